//! Manager behaviour with real processes: proxies in children under every start method,
//! exact concurrent updates, a server killed with SIGKILL, a client killed mid-call,
//! shutdown and registered types.

use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use multiproc_ipc::{Event, Queue};
use multiproc_manager::{
    DictProxy, Error, ListProxy, Manager, NamespaceProxy, Op, Proxy, Result, Served, decode, encode,
};
use multiproc_spawn::{Process, StartMethod};

fn kill9(pid: u32) {
    let st = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

type Shared = (DictProxy<String, i64>, ListProxy<u32>, NamespaceProxy);

fn fill((d, l, ns): Shared) -> u32 {
    d.insert("child".into(), 7).unwrap();
    l.extend([1, 2, 3]).unwrap();
    ns.set("who", "child").unwrap();
    std::process::id()
}

#[test]
fn proxies_work_in_children_under_every_start_method() {
    let manager = Manager::new().unwrap();
    for method in [
        StartMethod::ForkServer,
        StartMethod::Spawn,
        StartMethod::Fork,
    ] {
        let d = manager.dict::<String, i64>().unwrap();
        let l = manager.list::<u32>().unwrap();
        let ns = manager.namespace().unwrap();
        let p = Process::builder()
            .start_method(method)
            .spawn(fill, (d.clone(), l.clone(), ns.clone()))
            .unwrap();
        p.join().unwrap();
        assert_eq!(d.items().unwrap(), [("child".to_string(), 7)], "{method:?}");
        assert_eq!(l.to_vec().unwrap(), [1, 2, 3], "{method:?}");
        assert_eq!(ns.get::<String>("who").unwrap().as_deref(), Some("child"));
    }
    // The children's connections are gone with them (each count is exact once joined? the
    // server notices a dead client within its poll interval: wait for it, bounded).
    wait_for_connections(&manager, 1);
}

fn take_from_queue(q: Queue<DictProxy<u8, u8>>) {
    let d = q.get().unwrap();
    d.insert(1, 2).unwrap();
}

#[test]
fn a_proxy_travels_in_a_queue_item_to_a_running_process() {
    let manager = Manager::new().unwrap();
    let q = Queue::new().unwrap();
    let p = multiproc_spawn::spawn(take_from_queue, q.clone()).unwrap();
    let d = manager.dict::<u8, u8>().unwrap();
    q.put(d.clone()).unwrap();
    p.join().unwrap();
    assert_eq!(d.get(&1).unwrap(), Some(2));
}

fn add_many(d: DictProxy<String, u64>) {
    for _ in 0..500 {
        d.update_with("n".into(), 0, Op::Add(1)).unwrap();
    }
}

#[test]
fn concurrent_update_with_from_several_processes_is_exact() {
    let manager = Manager::new().unwrap();
    let d = manager.dict::<String, u64>().unwrap();
    let ps: Vec<_> = (0..4)
        .map(|_| multiproc_spawn::spawn(add_many, d.clone()).unwrap())
        .collect();
    add_many(d.clone());
    for p in ps {
        p.join().unwrap();
    }
    assert_eq!(d.get(&"n".into()).unwrap(), Some(2500));
}

#[test]
fn a_killed_server_fails_every_call_within_a_second() {
    let manager = Manager::new().unwrap();
    let d = manager.dict::<u64, u64>().unwrap();
    d.insert(1, 1).unwrap();
    let (tx, rx) = mpsc::channel();
    let busy = d.clone();
    let t = std::thread::spawn(move || {
        // Calls in a loop, so that one is under way when the server dies.
        let mut n = 0u64;
        loop {
            match busy.insert(1, n) {
                Ok(_) => n += 1,
                Err(e) => {
                    tx.send((e, Instant::now())).unwrap();
                    return;
                }
            }
            if n == 1000 {
                let _ = tx.send((Error::Empty, Instant::now()));
            }
        }
    });
    assert!(matches!(
        rx.recv_timeout(Duration::from_secs(20)).unwrap().0,
        Error::Empty
    ));
    let killed = Instant::now();
    kill9(manager.pid());
    let (e, at) = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("a call hung");
    assert!(matches!(e, Error::Closed), "{e:?}");
    assert!(at - killed < Duration::from_secs(1), "{:?}", at - killed);
    t.join().unwrap();
    let start = Instant::now();
    assert!(matches!(d.get(&1), Err(Error::Closed)));
    assert!(matches!(manager.dict::<u8, u8>(), Err(Error::Closed)));
    assert!(start.elapsed() < Duration::from_secs(1));
}

/// A registered type whose `block` method holds a call open until released. Values stored in
/// a manager cannot hold handles (events...), so it meets the test through files in `dir`:
/// it creates `entered`, then waits for `release` to exist.
struct Gate {
    dir: PathBuf,
    calls: u64,
}

impl Served for Gate {
    type Init = PathBuf;
    fn create(dir: PathBuf) -> Result<Self> {
        Ok(Gate { dir, calls: 0 })
    }
    fn call(&mut self, method: &str, args: &[u8]) -> Result<Vec<u8>> {
        self.calls += 1;
        match method {
            "block" => {
                std::fs::write(self.dir.join("entered"), b"")?;
                while !self.dir.join("release").exists() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                encode(&())
            }
            "calls" => encode(&self.calls),
            "echo" => encode(&decode::<String>(args)?),
            "panic" => panic!("asked to panic"),
            _ => Err(Error::Invalid(format!("Gate has no method {method}"))),
        }
    }
}

fn call_block(g: Proxy<Gate>) {
    g.call::<_, ()>("block", &()).unwrap();
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("multiproc-manager-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn values_holding_handles_are_refused_with_an_error() {
    let manager = Manager::new().unwrap();
    let d = manager.dict::<u8, Event>().unwrap();
    assert!(matches!(
        d.insert(1, Event::new().unwrap()),
        Err(Error::Codec(_))
    ));
}

fn wait_for_connections(manager: &Manager, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while manager.connections().unwrap() != n {
        assert!(Instant::now() < deadline, "connections never fell to {n}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_client_killed_mid_call_loses_nothing_else_and_leaks_nothing() {
    let manager = Manager::builder().register::<Gate>("Gate").build().unwrap();
    let dir = scratch_dir("mid-call");
    let g = manager.create::<Gate>("Gate", dir.clone()).unwrap();
    let d = manager.dict::<u32, u32>().unwrap();
    d.insert(1, 1).unwrap();
    let p = multiproc_spawn::spawn(call_block, g.clone()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dir.join("entered").exists() {
        assert!(Instant::now() < deadline, "the child never got in");
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(manager.connections().unwrap(), 2);
    p.kill().unwrap();
    assert!(p.join().is_err());
    // Other objects work while the gate's call is still open.
    d.insert(2, 2).unwrap();
    std::fs::write(dir.join("release"), b"").unwrap();
    wait_for_connections(&manager, 1);
    assert_eq!(g.call::<_, u64>("calls", &()).unwrap(), 2);
    assert_eq!(d.items().unwrap(), [(1, 1), (2, 2)]);
}

#[test]
fn registered_types_answer_errors_and_survive_panics() {
    let manager = Manager::builder().register::<Gate>("Gate").build().unwrap();
    let dir = scratch_dir("errors");
    let g = manager.create::<Gate>("Gate", dir.clone()).unwrap();
    assert_eq!(g.call::<_, String>("echo", "hi").unwrap(), "hi");
    assert!(matches!(g.call::<_, ()>("nope", &()), Err(Error::Invalid(m)) if m.contains("nope")));
    assert!(
        matches!(g.call::<_, ()>("panic", &()), Err(Error::TaskFailed { message }) if message.contains("asked"))
    );
    assert_eq!(g.call::<_, u64>("calls", &()).unwrap(), 4);
    assert!(matches!(
        manager.create::<Gate>("Other", dir),
        Err(Error::Invalid(_))
    ));
}

fn use_after_shutdown((d, ready, go): (DictProxy<u8, u8>, Event, Event)) -> bool {
    d.insert(1, 1).unwrap();
    ready.set();
    go.wait();
    matches!(d.get(&1), Err(Error::Closed))
}

#[test]
fn shutdown_stops_the_server_and_every_proxy_answers_closed() {
    let manager = Manager::new().unwrap();
    let pid = manager.pid();
    let d = manager.dict::<u8, u8>().unwrap();
    let (ready, go) = (Event::new().unwrap(), Event::new().unwrap());
    let p =
        multiproc_spawn::spawn(use_after_shutdown, (d.clone(), ready.clone(), go.clone())).unwrap();
    assert!(ready.wait_timeout(Duration::from_secs(20)));
    manager.shutdown().unwrap();
    assert!(multiproc_testkit::is_gone(pid));
    go.set();
    assert!(p.join().unwrap());
    assert!(matches!(d.get(&1), Err(Error::Closed)));
}

#[test]
fn dict_list_and_value_methods() {
    let manager = Manager::new().unwrap();
    let d = manager.dict::<String, Vec<u8>>().unwrap();
    assert!(d.is_empty().unwrap());
    d.update([("a".to_string(), vec![1]), ("b".to_string(), vec![2, 2])])
        .unwrap();
    assert_eq!(d.insert("a".into(), vec![3]).unwrap(), Some(vec![1]));
    assert!(d.contains_key(&"b".into()).unwrap());
    assert_eq!(d.remove(&"b".into()).unwrap(), Some(vec![2, 2]));
    assert_eq!(d.remove(&"b".into()).unwrap(), None);
    assert_eq!(d.values().unwrap(), [vec![3]]);
    d.clear().unwrap();
    assert_eq!(d.len().unwrap(), 0);
    let l = manager.list::<String>().unwrap();
    assert!(matches!(l.set(0, "x".into()), Err(Error::Invalid(_))));
    l.push("b".into()).unwrap();
    l.insert(0, "a".into()).unwrap();
    assert_eq!(l.to_vec().unwrap(), ["a", "b"]);
    let v = manager.value((1u8, "x".to_string())).unwrap();
    v.set((2, "y".into())).unwrap();
    assert_eq!(v.get().unwrap(), (2, "y".to_string()));
    let f = manager.dict::<u8, f64>().unwrap();
    assert_eq!(f.update_with(0, 0.5, Op::Add(0.25)).unwrap(), 0.75);
}
