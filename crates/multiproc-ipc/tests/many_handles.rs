//! An item holding a thousand handles (a thousand queues: 3,000 descriptors, twelve times what
//! one `SCM_RIGHTS` message carries) crosses a queue and a pipe intact, under every start
//! method, and every queue in it works in the receiver; a receiver without room for them gets
//! an error that names the cause, loses that item only, and takes the next one whole. The
//! same thousand queues also travel in a child's arguments and back in its result (the
//! bootstrap socket's frames, not the queue's descriptor channel).

mod common;
use common::{METHODS, start};
use multiproc_testkit::{open_fds, set_soft_nofile};

use multiproc_ipc::{Connection, Error, Pipe, Queue};
use multiproc_spawn::StartMethod;

const HANDLES: usize = 1000;

/// Raises this process's soft descriptor limit to its hard limit (children inherit it), so
/// that 3,000 descriptors and their copies fit.
fn raise_nofile() {
    set_soft_nofile(None);
}

fn queues() -> Vec<Queue<u64>> {
    (0..HANDLES).map(|_| Queue::new().unwrap()).collect()
}

/// Puts its index into every queue of the item; returns how many there were.
fn answer_each(qs: Vec<Queue<u64>>) -> usize {
    for (i, q) in qs.iter().enumerate() {
        q.put(i as u64).unwrap();
    }
    qs.len()
}

fn from_queue(inbox: Queue<Vec<Queue<u64>>>) -> usize {
    answer_each(inbox.get().unwrap())
}

fn from_pipe(conn: Connection<Vec<Queue<u64>>>) -> usize {
    answer_each(conn.recv().unwrap())
}

fn check_answers(m: StartMethod, qs: &[Queue<u64>]) {
    for (i, q) in qs.iter().enumerate() {
        assert_eq!(q.get().unwrap(), i as u64, "{m:?}: queue {i}");
    }
}

#[test]
fn a_thousand_queues_inside_one_queue_item_arrive_intact() {
    raise_nofile();
    for m in METHODS {
        let inbox = Queue::new().unwrap();
        let p = start(m, from_queue, inbox.clone());
        let qs = queues();
        inbox.put(qs.clone()).unwrap();
        assert_eq!(p.join().unwrap(), HANDLES, "{m:?}");
        check_answers(m, &qs);
    }
}

#[test]
fn a_thousand_queues_inside_one_pipe_message_arrive_intact() {
    raise_nofile();
    for m in METHODS {
        let (a, b) = Pipe::duplex().unwrap();
        let p = start(m, from_pipe, b);
        let qs = queues();
        a.send(qs.clone()).unwrap();
        assert_eq!(p.join().unwrap(), HANDLES, "{m:?}");
        check_answers(m, &qs);
    }
}

/// With room for a few descriptors only, takes the item of a thousand queues (its error), then
/// with room again, the next item, and answers through its one queue.
fn take_without_room(inbox: Queue<Vec<Queue<u64>>>) -> String {
    let old = set_soft_nofile(Some(open_fds() as u64 + 100));
    let lost = match inbox.get() {
        Err(Error::Codec(m)) => m,
        other => panic!("expected an error, got {:?}", other.map(|v| v.len())),
    };
    set_soft_nofile(Some(old));
    answer_each(inbox.get().unwrap());
    lost
}

#[test]
fn a_receiver_without_room_for_a_thousand_handles_gets_an_error_and_the_next_item() {
    raise_nofile();
    let inbox = Queue::new().unwrap();
    inbox.put(queues()).unwrap();
    let next = Queue::new().unwrap();
    inbox.put(vec![next.clone()]).unwrap();
    let lost = start(StartMethod::Spawn, take_without_room, inbox)
        .join()
        .unwrap();
    assert!(lost.contains("ulimit -n"), "{lost}");
    assert_eq!(next.get().unwrap(), 0);
}

/// Answers through every queue of its arguments, then hands them all back.
fn answer_and_return(qs: Vec<Queue<u64>>) -> Vec<Queue<u64>> {
    answer_each(qs.clone());
    qs
}

#[test]
fn a_thousand_queues_in_a_childs_arguments_and_result_arrive_intact() {
    raise_nofile();
    for m in METHODS {
        let qs = queues();
        let back = start(m, answer_and_return, qs.clone()).join().unwrap();
        check_answers(m, &qs);
        assert_eq!(back.len(), HANDLES, "{m:?}");
        // The returned handles are the same queues, and work.
        for (i, q) in back.iter().enumerate() {
            q.put(i as u64 + 1).unwrap();
            assert_eq!(qs[i].get().unwrap(), i as u64 + 1, "{m:?}: queue {i}");
        }
    }
}
