//! Nested proxies (Python 3.6+): a proxy stored inside a dict, list, namespace or value of its
//! own manager reads back as a proxy to the same server object, in every process and under
//! every start method; a handle that a manager cannot keep is refused with an error that says so.

use multiproc_ipc::Queue;
use multiproc_manager::{DictProxy, Error, ListProxy, Manager, NamespaceProxy, ValueProxy};
use multiproc_spawn::{Process, StartMethod};

const METHODS: [StartMethod; 3] = [
    StartMethod::Fork,
    StartMethod::Spawn,
    StartMethod::ForkServer,
];

#[test]
fn a_list_stored_in_a_dict_reads_back_as_the_same_list() {
    let m = Manager::new().unwrap();
    let outer = m.dict::<String, ListProxy<u32>>().unwrap();
    let inner = m.list::<u32>().unwrap();
    inner.push(1).unwrap();
    assert!(
        outer
            .insert("inner".into(), inner.clone())
            .unwrap()
            .is_none()
    );

    let back = outer.get(&"inner".into()).unwrap().expect("stored");
    back.push(2).unwrap();
    assert_eq!(inner.to_vec().unwrap(), [1, 2], "the same server object");
    assert_eq!(outer.values().unwrap()[0].to_vec().unwrap(), [1, 2]);
    let items = outer.items().unwrap();
    assert_eq!(items[0].0, "inner");
    assert_eq!(items[0].1.len().unwrap(), 2);
}

#[test]
fn proxies_nest_in_lists_namespaces_and_values() {
    let m = Manager::new().unwrap();
    let d = m.dict::<u32, String>().unwrap();
    d.insert(1, "one".into()).unwrap();

    let list = m.list::<DictProxy<u32, String>>().unwrap();
    list.push(d.clone()).unwrap();
    assert_eq!(
        list.get(0).unwrap().unwrap().get(&1).unwrap().as_deref(),
        Some("one")
    );
    assert_eq!(list.pop().unwrap().unwrap().len().unwrap(), 1);

    let ns: NamespaceProxy = m.namespace().unwrap();
    ns.set("table", d.clone()).unwrap();
    let t: DictProxy<u32, String> = ns.get("table").unwrap().unwrap();
    t.insert(2, "two".into()).unwrap();
    assert_eq!(d.len().unwrap(), 2);

    // A value created holding a proxy, and one set to a proxy later.
    let v: ValueProxy<DictProxy<u32, String>> = m.value(d.clone()).unwrap();
    assert_eq!(v.get().unwrap().len().unwrap(), 2);
    let other = m.dict::<u32, String>().unwrap();
    v.set(other.clone()).unwrap();
    v.get().unwrap().insert(3, "three".into()).unwrap();
    assert_eq!(other.get(&3).unwrap().as_deref(), Some("three"));
}

/// In a child: reads the inner list out of the outer dict and appends to it.
fn append_through_nested((outer, x): (DictProxy<String, ListProxy<u32>>, u32)) {
    let inner = outer.get(&"inner".into()).unwrap().expect("stored");
    inner.push(x).unwrap();
}

#[test]
fn nested_proxies_work_in_children_under_every_start_method() {
    let m = Manager::new().unwrap();
    let outer = m.dict::<String, ListProxy<u32>>().unwrap();
    let inner = m.list::<u32>().unwrap();
    outer.insert("inner".into(), inner.clone()).unwrap();
    for (i, method) in METHODS.into_iter().enumerate() {
        let p = Process::builder()
            .start_method(method)
            .spawn(append_through_nested, (outer.clone(), i as u32))
            .unwrap();
        p.join().unwrap();
    }
    assert_eq!(inner.to_vec().unwrap(), [0, 1, 2]);
}

#[test]
fn a_shared_memory_queue_cannot_be_stored_and_the_error_says_so() {
    let m = Manager::new().unwrap();
    let d = m.dict::<u32, Queue<u32>>().unwrap();
    let q = Queue::new().unwrap();
    match d.insert(1, q) {
        Err(Error::Codec(msg)) => assert!(
            msg.contains("cannot be stored in a manager"),
            "the error does not say why: {msg}"
        ),
        other => panic!("expected a codec error, got {other:?}"),
    }
    assert_eq!(d.len().unwrap(), 0, "nothing was stored");
}

#[test]
fn a_proxy_of_another_manager_cannot_be_stored_and_the_error_says_so() {
    let a = Manager::new().unwrap();
    let b = Manager::new().unwrap();
    let d = a.dict::<u32, ListProxy<u32>>().unwrap();
    let foreign = b.list::<u32>().unwrap();
    match d.insert(1, foreign) {
        Err(Error::Codec(msg)) => assert!(
            msg.contains("cannot be stored in a manager"),
            "the error does not say why: {msg}"
        ),
        other => panic!("expected a codec error, got {other:?}"),
    }
}
