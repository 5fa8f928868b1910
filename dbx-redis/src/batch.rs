//! Automatic pipelining of the single commands sent on the shared connection.
//!
//! redis-rs writes the commands of a multiplexed connection from a task of
//! its own, as soon as that task sees them. Under Tokio's multi-thread
//! scheduler that task runs right after the task that queued a command (a
//! task woken by a worker goes to that worker's LIFO slot), so it almost
//! always finds just one: 50 concurrent GETs cost 50 `writev` calls and, with
//! `TCP_NODELAY`, 50 packets, which took about half of the client's CPU per
//! command on loopback.
//!
//! dbx sends the way Nagle's algorithm does, with the scheduler's turn as
//! the delay instead of a timer:
//! - while nothing awaits a reply, a command goes out at once, alone;
//! - otherwise it joins a queue. The first command into the empty queue
//!   leads: its task yields once (`tokio::task::yield_now`, which runs every
//!   other ready task of the worker first), then sends the whole queue as one
//!   pipeline, in one write, and hands each caller its own reply: a value, or
//!   the server's error for that command alone.
//!
//! A leader dropped on the way (its caller timed out or gave up) hands its
//! batch to a task of its own, so the others still get their replies. A
//! command whose caller gave up before it was sent is not sent.

use redis::aio::ConnectionManager;
use redis::{Cmd, RedisError, RedisResult, Value};
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::oneshot;

/// Most commands sent in one batch (the rest of a fuller queue goes in the
/// next one, from a task of its own).
const MAX_BATCH: usize = 512;

type Reply = oneshot::Sender<RedisResult<Value>>;

/// One generation of the shared connection and the commands waiting for it.
pub(crate) struct Link {
    pub(crate) generation: u64,
    pub(crate) manager: ConnectionManager,
    queue: Mutex<Queue>,
    /// Batches and lone commands sent and not answered yet.
    in_flight: Arc<AtomicUsize>,
}

#[derive(Default)]
struct Queue {
    cmds: Vec<Cmd>,
    replies: Vec<Reply>,
    /// A leader (or a task standing in for one) will take the queue.
    flush_pending: bool,
}

/// The sending of one batch and the handing out of its replies.
type Flight = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Link {
    pub(crate) fn new(generation: u64, manager: ConnectionManager) -> Self {
        Link {
            generation,
            manager,
            queue: Mutex::default(),
            in_flight: Arc::default(),
        }
    }

    /// Send `cmd` with whatever other commands are queued in this turn of the
    /// scheduler; its reply (a server error as `Err`).
    pub(crate) async fn query(self: &Arc<Self>, cmd: Cmd) -> RedisResult<Value> {
        if cmd.is_no_response() {
            // No reply to hand back: nothing to gain from the queue.
            let mut manager = self.manager.clone();
            return manager.send_packed_command(&cmd).await;
        }
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            // Nothing awaits a reply, so nothing is likely to join this
            // command: it goes out at once, alone (as Nagle's algorithm sends
            // when no data awaits an acknowledgement).
            let _in_flight = InFlight::new(&*self.in_flight);
            let mut manager = self.manager.clone();
            return manager
                .send_packed_command(&cmd)
                .await
                .and_then(Value::extract_error);
        }
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
            q.cmds.push(cmd);
            q.replies.push(tx);
            !std::mem::replace(&mut q.flush_pending, true)
        };
        if lead {
            let mut leader = Leader {
                link: self,
                state: Lead::Waiting,
            };
            tokio::task::yield_now().await;
            if let Some(flight) = self.take_flight() {
                leader.state = Lead::Flying(flight);
                if let Lead::Flying(flight) = &mut leader.state {
                    flight.await;
                }
            }
            leader.state = Lead::Done;
        }
        match rx.await {
            Ok(reply) => reply,
            // Nobody will answer: the runtime shut down under the batch.
            Err(_) => Err(RedisError::from(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the runtime stopped before the command's reply arrived",
            ))),
        }
    }

    /// Take the queue (up to [`MAX_BATCH`] commands; a task is spawned for
    /// the rest) and make the future that sends it.
    fn take_flight(self: &Arc<Self>) -> Option<Flight> {
        let (cmds, replies, more) = self.take_batch();
        if more {
            spawn_flush(Arc::clone(self));
        }
        // A caller that gave up (timed out, dropped) before its command was
        // sent: the command is not sent.
        let (cmds, replies): (Vec<Cmd>, Vec<Reply>) = cmds
            .into_iter()
            .zip(replies)
            .filter(|(_, reply)| !reply.is_closed())
            .unzip();
        if cmds.is_empty() {
            return None;
        }
        let manager = self.manager.clone();
        let in_flight = InFlight::new(Arc::clone(&self.in_flight));
        Some(Box::pin(send(manager, cmds, replies, in_flight)))
    }

    /// Take up to [`MAX_BATCH`] commands, and whether more are left (the
    /// queue then stays marked as having a flush pending, for the caller to
    /// spawn one).
    fn take_batch(&self) -> (Vec<Cmd>, Vec<Reply>, bool) {
        let mut q = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if q.cmds.len() <= MAX_BATCH {
            q.flush_pending = false;
            let cmds = std::mem::take(&mut q.cmds);
            (cmds, std::mem::take(&mut q.replies), false)
        } else {
            let rest_cmds = q.cmds.split_off(MAX_BATCH);
            let rest_replies = q.replies.split_off(MAX_BATCH);
            let cmds = std::mem::replace(&mut q.cmds, rest_cmds);
            (cmds, std::mem::replace(&mut q.replies, rest_replies), true)
        }
    }
}

/// Send `cmds` as one write and hand each caller its reply.
async fn send(
    mut manager: ConnectionManager,
    cmds: Vec<Cmd>,
    replies: Vec<Reply>,
    _in_flight: InFlight<Arc<AtomicUsize>>,
) {
    let n = cmds.len();
    if n == 1 {
        let reply = manager.send_packed_command(&cmds[0]).await;
        if let Some(tx) = replies.into_iter().next() {
            let _ = tx.send(reply.and_then(Value::extract_error));
        }
        return;
    }
    let mut pipe = redis::Pipeline::with_capacity(n);
    for cmd in cmds {
        pipe.add_command(cmd);
    }
    match manager.send_packed_commands(&pipe, 0, n).await {
        Ok(values) if values.len() == n => {
            for (tx, value) in replies.into_iter().zip(values) {
                let _ = tx.send(value.extract_error());
            }
        }
        Ok(values) => {
            let e = RedisError::from((
                redis::ErrorKind::Parse,
                "a pipeline of commands got the wrong number of replies",
                format!("{n} commands, {} replies", values.len()),
            ));
            for tx in replies {
                let _ = tx.send(Err(e.clone()));
            }
        }
        Err(e) => {
            for tx in replies {
                let _ = tx.send(Err(e.clone()));
            }
        }
    }
}

/// A batch, or a command sent alone, counted in [`Link::in_flight`] until it
/// is answered (or dropped).
struct InFlight<C: Deref<Target = AtomicUsize>>(C);

impl<C: Deref<Target = AtomicUsize>> InFlight<C> {
    fn new(count: C) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        InFlight(count)
    }
}

impl<C: Deref<Target = AtomicUsize>> Drop for InFlight<C> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Run `flight` as a task of its own. Outside a Tokio runtime nothing can
/// run it: dropping it answers its callers with an error (redis-rs needs
/// Tokio too, so only misuse gets there, but it must neither panic nor
/// hang).
fn spawn(flight: Flight) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(flight);
    }
}

/// Send what is queued on `link` from a task of its own.
fn spawn_flush(link: Arc<Link>) {
    spawn(Box::pin(async move {
        if let Some(flight) = link.take_flight() {
            flight.await;
        }
    }));
}

/// The first caller into an empty queue sends the queue for everyone. If it
/// is dropped on the way (its caller timed out or gave up), the batch must
/// still go out: what it has not sent yet, or is waiting for, moves to a
/// task of its own.
struct Leader<'a> {
    link: &'a Arc<Link>,
    state: Lead,
}

enum Lead {
    /// Stepping back for the other tasks to queue their commands.
    Waiting,
    /// Sending the batch, or waiting for its replies.
    Flying(Flight),
    Done,
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.state, Lead::Done) {
            Lead::Waiting => spawn_flush(Arc::clone(self.link)),
            Lead::Flying(flight) => spawn(flight),
            Lead::Done => {}
        }
    }
}

#[cfg(test)]
mod tests {
    //! The leader's hand-over, step by step, against the real server of the
    //! test suite (`DBX_TEST_REDIS_URL`, default the local one).
    use super::*;
    use redis::cmd;
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    async fn link() -> Arc<Link> {
        let url = std::env::var("DBX_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".to_owned());
        let client = redis::Client::open(url).unwrap();
        Arc::new(Link::new(0, ConnectionManager::new(client).await.unwrap()))
    }

    fn key(name: &str) -> String {
        format!("dbx-test:batch:{}:{name}", std::process::id())
    }

    /// Poll once, by hand.
    fn poll_once<F: Future + ?Sized>(fut: Pin<&mut F>) -> Poll<F::Output> {
        fut.poll(&mut Context::from_waker(Waker::noop()))
    }

    async fn within<T>(fut: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), fut)
            .await
            .expect("no answer within 10 s")
    }

    async fn get(link: &Arc<Link>, k: &str) -> Value {
        within(link.query(Cmd::get(k))).await.unwrap()
    }

    type Call<'a> = Pin<Box<dyn Future<Output = RedisResult<Value>> + Send + 'a>>;

    /// With something in flight: `lead` becomes the leader and steps back,
    /// `follow` joins its queue.
    fn queue_two(link: &Arc<Link>, lead: Cmd, follow: Cmd) -> (Call<'_>, Call<'_>) {
        let mut leader: Call<'_> = Box::pin(link.query(lead));
        assert!(poll_once(leader.as_mut()).is_pending());
        let mut follower: Call<'_> = Box::pin(link.query(follow));
        assert!(poll_once(follower.as_mut()).is_pending());
        (leader, follower)
    }

    #[tokio::test]
    async fn commands_of_one_batch_get_their_own_replies_and_errors() {
        let link = link().await;
        let k = key("mixed");
        // Something awaits a reply, so commands queue behind a leader.
        let _busy = InFlight::new(&*link.in_flight);
        let mut set = Box::pin(link.query(Cmd::set(&k, "x")));
        assert!(poll_once(set.as_mut()).is_pending());
        let incr = link.query(Cmd::incr(&k, 1));
        let read = link.query(Cmd::get(&k));
        let (set, incr, read) = within(async { tokio::join!(set, incr, read) }).await;
        assert_eq!(set.unwrap(), Value::Okay);
        let e = incr.unwrap_err();
        assert!(e.to_string().contains("not an integer"), "{e}");
        assert_eq!(read.unwrap(), Value::BulkString(b"x".to_vec()));
        assert_eq!(link.in_flight.load(Ordering::Relaxed), 1);
        within(link.query(Cmd::del(&k))).await.unwrap();
    }

    #[tokio::test]
    async fn a_leader_dropped_before_sending_hands_the_batch_on_without_its_command() {
        let link = link().await;
        let (mine, theirs) = (key("unsent"), key("handed-on"));
        let _busy = InFlight::new(&*link.in_flight);
        let (leader, follower) = queue_two(&link, Cmd::set(&mine, "sent"), Cmd::incr(&theirs, 5));
        drop(leader);
        assert_eq!(within(follower).await.unwrap(), Value::Int(5));
        assert_eq!(get(&link, &mine).await, Value::Nil);
        within(link.query(Cmd::del(&theirs))).await.unwrap();
    }

    #[tokio::test]
    async fn a_leader_dropped_while_waiting_for_replies_still_delivers_them() {
        let link = link().await;
        let (mine, theirs) = (key("sent"), key("delivered"));
        let _busy = InFlight::new(&*link.in_flight);
        let (mut leader, follower) =
            queue_two(&link, Cmd::set(&mine, "sent"), Cmd::incr(&theirs, 7));
        // Past its step back: the leader sends the batch and waits.
        assert!(poll_once(leader.as_mut()).is_pending());
        assert_eq!(link.in_flight.load(Ordering::Relaxed), 2);
        drop(leader);
        assert_eq!(within(follower).await.unwrap(), Value::Int(7));
        assert_eq!(get(&link, &mine).await, Value::BulkString(b"sent".to_vec()));
        within(link.query(cmd("DEL").arg(&mine).arg(&theirs).to_owned()))
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn more_commands_than_a_batch_holds_all_go_out() {
        let link = link().await;
        let k = key("many");
        let _busy = InFlight::new(&*link.in_flight);
        let calls: Vec<_> = (0..MAX_BATCH * 2 + 3)
            .map(|_| Box::pin(link.query(Cmd::incr(&k, 1))))
            .collect();
        let mut replies: Vec<i64> = within(futures_join_all(calls))
            .await
            .into_iter()
            .map(|r| match r.unwrap() {
                Value::Int(n) => n,
                other => panic!("{other:?}"),
            })
            .collect();
        replies.sort_unstable();
        let expected: Vec<i64> = (1..=i64::try_from(MAX_BATCH * 2 + 3).unwrap()).collect();
        assert_eq!(replies, expected);
        within(link.query(Cmd::del(&k))).await.unwrap();
    }

    /// All of `futs`, polled together from one task.
    async fn futures_join_all<F: Future + Unpin>(futs: Vec<F>) -> Vec<F::Output> {
        let mut futs: Vec<Option<F>> = futs.into_iter().map(Some).collect();
        let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
        std::future::poll_fn(|cx| {
            let mut pending = false;
            for (fut, slot) in futs.iter_mut().zip(out.iter_mut()) {
                if let Some(f) = fut {
                    match Pin::new(f).poll(cx) {
                        Poll::Ready(v) => {
                            *slot = Some(v);
                            *fut = None;
                        }
                        Poll::Pending => pending = true,
                    }
                }
            }
            if pending {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
        out.into_iter().map(Option::unwrap).collect()
    }
}
