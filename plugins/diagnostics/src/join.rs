//! A minimal "wait for all" over boxed futures, so that independent network checks run
//! concurrently without pulling an executor or a futures crate into a plugin library.

use mailmend_core::BoxFuture;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Polls every future until all are done; the outputs come back in the order of `futures`.
pub(crate) fn join_all<T>(futures: Vec<BoxFuture<'_, T>>) -> JoinAll<'_, T> {
    let results = futures.iter().map(|_| None).collect();
    JoinAll {
        futures: futures.into_iter().map(Some).collect(),
        results,
    }
}

pub(crate) struct JoinAll<'a, T> {
    futures: Vec<Option<BoxFuture<'a, T>>>,
    results: Vec<Option<T>>,
}

// The outputs are only ever moved, never pinned, so the join may move whatever it holds.
impl<T> Unpin for JoinAll<'_, T> {}

impl<T> Future for JoinAll<'_, T> {
    type Output = Vec<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Vec<T>> {
        let this = self.get_mut();
        for (slot, out) in this.futures.iter_mut().zip(this.results.iter_mut()) {
            if let Some(fut) = slot {
                if let Poll::Ready(value) = fut.as_mut().poll(cx) {
                    *out = Some(value);
                    *slot = None;
                }
            }
        }
        if this.futures.iter().any(Option::is_some) {
            return Poll::Pending;
        }
        Poll::Ready(this.results.iter_mut().filter_map(Option::take).collect())
    }
}

/// Polls every future until `enough` says the outputs so far settle the question, or all are
/// done. The futures still running then are dropped (which cancels them) and their slots stay
/// `None`; the slots keep the order of `futures`.
pub(crate) async fn join_until<'a, T>(
    futures: Vec<BoxFuture<'a, T>>,
    enough: impl Fn(&[Option<T>]) -> bool,
) -> Vec<Option<T>> {
    let mut futures: Vec<Option<BoxFuture<'a, T>>> = futures.into_iter().map(Some).collect();
    let mut results: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        for (slot, out) in futures.iter_mut().zip(results.iter_mut()) {
            if let Some(fut) = slot {
                if let Poll::Ready(value) = fut.as_mut().poll(cx) {
                    *out = Some(value);
                    *slot = None;
                }
            }
        }
        if futures.iter().all(Option::is_none) || enough(&results) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    results
}

/// Runs two futures of different types concurrently and returns both outputs.
pub(crate) async fn join2<A, B>(a: BoxFuture<'_, A>, b: BoxFuture<'_, B>) -> (A, B) {
    enum Either<A, B> {
        A(A),
        B(B),
    }
    let a: BoxFuture<'_, Either<A, B>> = Box::pin(async move { Either::A(a.await) });
    let b: BoxFuture<'_, Either<A, B>> = Box::pin(async move { Either::B(b.await) });
    let mut out = join_all(vec![a, b]).await.into_iter();
    match (out.next(), out.next()) {
        (Some(Either::A(a)), Some(Either::B(b))) => (a, b),
        // join_all keeps the order of its futures, so nothing else can come back.
        _ => unreachable!("join_all returns its outputs in order"),
    }
}

/// A future that was polled alongside another one: done, or still running.
pub(crate) enum Started<'a, T> {
    Done(T),
    Running(BoxFuture<'a, T>),
}

impl<T> Started<'_, T> {
    /// Waits for the output.
    pub(crate) async fn finish(self) -> T {
        match self {
            Started::Done(value) => value,
            Started::Running(future) => future.await,
        }
    }
}

/// Polls `main` and `side` together until `main` is done, and returns `main`'s output with
/// `side` done or still running: the caller finishes it only when it needs its output, and
/// dropping it cancels it.
pub(crate) fn alongside<'a, A, B>(
    main: BoxFuture<'a, A>,
    side: BoxFuture<'a, B>,
) -> Alongside<'a, A, B> {
    Alongside {
        main,
        side: Some(Started::Running(side)),
    }
}

pub(crate) struct Alongside<'a, A, B> {
    main: BoxFuture<'a, A>,
    side: Option<Started<'a, B>>,
}

// The side's output is only ever moved, never pinned.
impl<A, B> Unpin for Alongside<'_, A, B> {}

impl<'a, A, B> Future for Alongside<'a, A, B> {
    type Output = (A, Started<'a, B>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if let Some(Started::Running(side)) = &mut this.side {
            if let Poll::Ready(value) = side.as_mut().poll(cx) {
                this.side = Some(Started::Done(value));
            }
        }
        match this.main.as_mut().poll(cx) {
            Poll::Ready(value) => match this.side.take() {
                Some(side) => Poll::Ready((value, side)),
                // `side` is only taken here, after which the future is never polled again.
                None => unreachable!("Alongside polled after completion"),
            },
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn outputs_keep_the_order_of_the_futures_not_of_completion() {
        let slow: BoxFuture<'_, u32> = Box::pin(async {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            1
        });
        let fast: BoxFuture<'_, u32> = Box::pin(async { 2 });
        assert_eq!(join_all(vec![slow, fast]).await, vec![1, 2]);
    }

    #[tokio::test]
    async fn futures_run_concurrently() {
        // Two futures that each wait for the other: only a concurrent join finishes.
        let barrier = tokio::sync::Barrier::new(2);
        let a: BoxFuture<'_, ()> = Box::pin(async {
            barrier.wait().await;
        });
        let b: BoxFuture<'_, ()> = Box::pin(async {
            barrier.wait().await;
        });
        tokio::time::timeout(std::time::Duration::from_secs(5), join_all(vec![a, b]))
            .await
            .expect("a sequential join would never finish");
    }

    #[tokio::test]
    async fn a_side_future_left_running_can_be_finished_or_dropped() {
        let slow: BoxFuture<'_, u32> = Box::pin(async {
            tokio::time::sleep(std::time::Duration::from_millis(30)).await;
            7
        });
        let fast: BoxFuture<'_, u32> = Box::pin(async { 1 });
        let (main, side) = alongside(fast, slow).await;
        assert_eq!(main, 1);
        assert!(matches!(side, Started::Running(_)));
        assert_eq!(side.finish().await, 7);

        let (a, b) = join2::<u8, u8>(Box::pin(async { 1 }), Box::pin(async { 2 })).await;
        assert_eq!((a, b), (1, 2));
    }

    #[tokio::test]
    async fn join_until_stops_once_the_outputs_suffice_and_drops_the_rest() {
        let never: BoxFuture<'_, u32> = Box::pin(std::future::pending());
        let quick: BoxFuture<'_, u32> = Box::pin(async { 5 });
        let out = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            join_until(vec![never, quick], |r| r[1] == Some(5)),
        )
        .await
        .expect("join_until must not wait for a future it no longer needs");
        assert_eq!(out, vec![None, Some(5)]);

        let a: BoxFuture<'_, u32> = Box::pin(async { 1 });
        let b: BoxFuture<'_, u32> = Box::pin(async { 2 });
        assert_eq!(
            join_until(vec![a, b], |_| false).await,
            vec![Some(1), Some(2)]
        );
    }

    #[tokio::test]
    async fn an_empty_join_is_ready_at_once() {
        let none: Vec<BoxFuture<'_, u8>> = Vec::new();
        assert!(join_all(none).await.is_empty());
    }
}
