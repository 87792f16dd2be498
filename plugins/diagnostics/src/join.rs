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
    async fn an_empty_join_is_ready_at_once() {
        let none: Vec<BoxFuture<'_, u8>> = Vec::new();
        assert!(join_all(none).await.is_empty());
    }
}
