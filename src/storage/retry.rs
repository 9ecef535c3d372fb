//! Retrying S3 requests that fail for a passing reason.
//!
//! Every S3 write (segment and playlist PUTs, deletes, upload parts and
//! single-PUT uploads) goes through [`retry`]: it runs an attempt until it
//! succeeds, fails for good (a 4xx answer such as 403 or 404), or the
//! [`RetryPolicy`] is spent, waiting between attempts with exponential
//! backoff and full jitter (harder when the server asks to slow down). A
//! server restart so costs a pause, not the run. Errors say what kind of
//! failure they are through [`Transient`]; the SDK's own errors are
//! classified here, callers wrap them when an attempt can also fail locally.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;
use tokio::time::Instant;

/// How long a request failing for a passing reason is retried by default
/// when it stores into a destination: long enough to ride out a server
/// restart.
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(120);

/// The first wait's upper bound; it doubles with every attempt.
const BASE_WAIT: Duration = Duration::from_millis(200);

/// No single wait is longer than this.
const MAX_WAIT: Duration = Duration::from_secs(20);

/// How much longer the waits are when the server asks to slow down.
const SLOW_DOWN_FACTOR: u32 = 4;

/// When to stop retrying: after a number of attempts, once a total time
/// has passed since the first attempt began, or whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: Option<u32>,
    max_elapsed: Option<Duration>,
}

impl Default for RetryPolicy {
    /// Retries for [`DEFAULT_RETRY_FOR`].
    fn default() -> Self {
        RetryPolicy::for_duration(DEFAULT_RETRY_FOR)
    }
}

impl RetryPolicy {
    /// At most `attempts` attempts, the first included (at least one).
    pub fn attempts(attempts: u32) -> Self {
        RetryPolicy {
            max_attempts: Some(attempts.max(1)),
            max_elapsed: None,
        }
    }

    /// New attempts for as long as `total` has not passed since the first
    /// began; the last wait is cut short to start one last attempt at the
    /// bound.
    pub fn for_duration(total: Duration) -> Self {
        RetryPolicy {
            max_attempts: None,
            max_elapsed: Some(total),
        }
    }

    /// How long to wait before the next attempt after `made` attempts, the
    /// last failing as `verdict`, `elapsed` after the first began; `None`
    /// when that failure is the answer. `random` picks the jitter.
    fn next_wait(
        &self,
        made: u32,
        elapsed: Duration,
        verdict: Verdict,
        random: u64,
    ) -> Option<Duration> {
        if verdict == Verdict::Final || self.max_attempts.is_some_and(|max| made >= max) {
            return None;
        }
        let wait = jittered(wait_ceiling(made, verdict == Verdict::SlowDown), random);
        match self.max_elapsed {
            Some(limit) if elapsed >= limit => None,
            Some(limit) => Some(wait.min(limit - elapsed)),
            None => Some(wait),
        }
    }
}

/// What a failed attempt says about the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Trying again cannot help (refused, not found, bad request, a local
    /// failure).
    Final,
    /// A passing failure: the server errored, timed out, or could not be
    /// reached.
    Retry,
    /// The server asked to slow down (503, `SlowDown`): retry, later.
    SlowDown,
}

/// An error that knows whether the attempt that failed with it is worth
/// repeating.
pub trait Transient {
    /// This failure's [`Verdict`].
    fn verdict(&self) -> Verdict;
}

impl<E: ProvideErrorMetadata> Transient for SdkError<E> {
    fn verdict(&self) -> Verdict {
        match self {
            SdkError::ServiceError(service) => {
                answer_verdict(service.raw().status().as_u16(), service.err().code())
            }
            SdkError::DispatchFailure(failure) if failure.is_user() => Verdict::Final,
            SdkError::ResponseError(_)
            | SdkError::DispatchFailure(_)
            | SdkError::TimeoutError(_) => Verdict::Retry,
            _ => Verdict::Final,
        }
    }
}

/// The verdict on a server's answer with HTTP `status` and error `code`.
fn answer_verdict(status: u16, code: Option<&str>) -> Verdict {
    if status == 503 || code == Some("SlowDown") {
        Verdict::SlowDown
    } else if status >= 500 || status == 408 || code == Some("RequestTimeout") {
        Verdict::Retry
    } else {
        Verdict::Final
    }
}

/// The upper bound of the wait after attempt `made` (1-based): 0.2 s ×
/// 2^(made-1), ×4 when slowing down, never above 20 s.
fn wait_ceiling(made: u32, slow: bool) -> Duration {
    let doubled = BASE_WAIT.saturating_mul(1 << made.saturating_sub(1).min(16));
    let ceiling = if slow {
        doubled.saturating_mul(SLOW_DOWN_FACTOR)
    } else {
        doubled
    };
    ceiling.min(MAX_WAIT)
}

/// Full jitter: a wait anywhere from zero to `ceiling`, in proportion to
/// `random` within `0..=u64::MAX`.
fn jittered(ceiling: Duration, random: u64) -> Duration {
    let nanos = ceiling.as_nanos() * u128::from(random) / u128::from(u64::MAX);
    Duration::from_nanos(nanos as u64)
}

/// A random number for the jitter: std's hasher keys are seeded randomly
/// and differ for every `RandomState`.
fn random() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

/// The error of the last attempt and how many attempts were made.
#[derive(Debug)]
pub struct Failed<E> {
    /// The last attempt's error.
    pub error: E,
    /// Attempts made, the first included.
    pub attempts: u32,
}

impl<E: std::error::Error + 'static> std::fmt::Display for Failed<E> {
    /// The error's causes, and the attempts when there was more than one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", describe(&self.error))?;
        if self.attempts > 1 {
            write!(f, " (after {} attempts)", self.attempts)?;
        }
        Ok(())
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Failed<E> {}

/// Runs `attempt` until it succeeds, fails with a final error, or `policy`
/// is spent; `what` names the request in the debug log of each retry
/// (e.g. `PUT s3://bucket/key`).
pub async fn retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    mut attempt: F,
) -> Result<T, Failed<E>>
where
    E: Transient + std::error::Error + 'static,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let mut made = 0;
    loop {
        made += 1;
        let error = match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) => error,
        };
        let verdict = error.verdict();
        let Some(wait) = policy.next_wait(made, started.elapsed(), verdict, random()) else {
            return Err(Failed {
                error,
                attempts: made,
            });
        };
        tracing::debug!(
            "{what}: attempt {made} failed ({}{}); retrying in {wait:.1?}",
            describe(&error),
            if verdict == Verdict::SlowDown {
                ", slowing down"
            } else {
                ""
            },
        );
        tokio::time::sleep(wait).await;
    }
}

/// An error's causes in words, most general first, without repeats. SDK
/// errors never include credentials.
pub(crate) fn describe<E: std::error::Error + 'static>(e: &E) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cause {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = err.source();
    }
    if parts.is_empty() {
        return aws_sdk_s3::error::DisplayErrorContext(e).to_string();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_s3::operation::put_object::PutObjectError;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn waits_grow_exponentially_are_capped_and_jittered_below_the_ceiling() {
        assert_eq!(wait_ceiling(1, false), Duration::from_millis(200));
        assert_eq!(wait_ceiling(2, false), Duration::from_millis(400));
        assert_eq!(wait_ceiling(4, false), Duration::from_millis(1600));
        assert_eq!(wait_ceiling(4, true), Duration::from_millis(6400));
        assert_eq!(wait_ceiling(30, false), MAX_WAIT);
        assert_eq!(wait_ceiling(8, true), MAX_WAIT);
        assert_eq!(wait_ceiling(u32::MAX, true), MAX_WAIT);
        for made in 1..40 {
            for slow in [false, true] {
                let ceiling = wait_ceiling(made, slow);
                for random in [0, 1, 12345, u64::MAX / 3, u64::MAX] {
                    assert!(jittered(ceiling, random) <= ceiling);
                }
            }
        }
        assert_eq!(jittered(Duration::from_secs(1), 0), Duration::ZERO);
        assert_eq!(jittered(MAX_WAIT, u64::MAX), MAX_WAIT);
        let half = jittered(Duration::from_secs(2), u64::MAX / 2);
        assert!(half.abs_diff(Duration::from_secs(1)) < Duration::from_micros(1));
    }

    #[test]
    fn answers_are_classified_by_status_and_code() {
        assert_eq!(
            answer_verdict(503, Some("ServiceUnavailable")),
            Verdict::SlowDown
        );
        assert_eq!(answer_verdict(400, Some("SlowDown")), Verdict::SlowDown);
        assert_eq!(answer_verdict(500, Some("InternalError")), Verdict::Retry);
        assert_eq!(answer_verdict(502, None), Verdict::Retry);
        assert_eq!(answer_verdict(408, None), Verdict::Retry);
        assert_eq!(answer_verdict(400, Some("RequestTimeout")), Verdict::Retry);
        assert_eq!(answer_verdict(403, Some("AccessDenied")), Verdict::Final);
        assert_eq!(answer_verdict(404, Some("NoSuchKey")), Verdict::Final);
        assert_eq!(answer_verdict(404, None), Verdict::Final);
    }

    fn answer(status: u16, code: &str) -> SdkError<PutObjectError> {
        let err = PutObjectError::generic(ErrorMetadata::builder().code(code).build());
        let raw = aws_sdk_s3::config::http::HttpResponse::new(
            status.try_into().expect("status"),
            aws_smithy_types::body::SdkBody::empty(),
        );
        SdkError::service_error(err, raw)
    }

    #[test]
    fn sdk_errors_are_classified() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let unreachable: SdkError<PutObjectError> =
            SdkError::dispatch_failure(ConnectorError::io(refused.into()));
        assert_eq!(unreachable.verdict(), Verdict::Retry);
        let timeout: SdkError<PutObjectError> = SdkError::timeout_error("slow");
        assert_eq!(timeout.verdict(), Verdict::Retry);
        assert_eq!(answer(503, "SlowDown").verdict(), Verdict::SlowDown);
        assert_eq!(answer(500, "InternalError").verdict(), Verdict::Retry);
        assert_eq!(answer(404, "NoSuchKey").verdict(), Verdict::Final);
        assert_eq!(answer(403, "AccessDenied").verdict(), Verdict::Final);
        let unbuilt: SdkError<PutObjectError> = SdkError::construction_failure("no bucket");
        assert_eq!(unbuilt.verdict(), Verdict::Final);
    }

    #[test]
    fn a_time_bound_cuts_the_last_wait_and_then_stops() {
        let policy = RetryPolicy::for_duration(Duration::from_secs(5));
        let second = Duration::from_secs(1);
        let first = policy.next_wait(1, Duration::ZERO, Verdict::Retry, u64::MAX);
        assert_eq!(first, Some(Duration::from_millis(200)));
        let cut = policy.next_wait(9, Duration::from_millis(4900), Verdict::Retry, u64::MAX);
        assert_eq!(cut, Some(Duration::from_millis(100)));
        assert_eq!(
            policy.next_wait(10, 5 * second, Verdict::Retry, 0),
            None,
            "spent"
        );
        assert_eq!(
            policy.next_wait(1, Duration::ZERO, Verdict::Final, 0),
            None,
            "final errors are not retried"
        );
        assert_eq!(RetryPolicy::attempts(0), RetryPolicy::attempts(1));
        assert_eq!(RetryPolicy::default().max_elapsed, Some(DEFAULT_RETRY_FOR));
    }

    #[derive(Debug, thiserror::Error)]
    #[error("fake failure")]
    struct Fake(Verdict);

    impl Transient for Fake {
        fn verdict(&self) -> Verdict {
            self.0
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
    }

    /// Runs a fake attempt that fails with `verdict` until call `succeed_on`.
    fn count_calls(
        policy: RetryPolicy,
        verdict: Verdict,
        succeed_on: u32,
    ) -> (Result<u32, Failed<Fake>>, u32) {
        let calls = AtomicU32::new(0);
        let result = runtime().block_on(retry(&policy, "fake", || {
            let call = calls.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if call == succeed_on {
                    Ok(call)
                } else {
                    Err(Fake(verdict))
                }
            }
        }));
        (result, calls.load(Ordering::SeqCst))
    }

    #[test]
    fn an_exhausted_policy_returns_the_last_error_with_the_attempts_made() {
        let (result, calls) = count_calls(RetryPolicy::attempts(4), Verdict::Retry, 0);
        let failed = result.expect_err("never succeeds");
        assert_eq!((failed.attempts, calls), (4, 4));
        assert_eq!(failed.to_string(), "fake failure (after 4 attempts)");

        let (result, calls) = count_calls(RetryPolicy::attempts(4), Verdict::Retry, 3);
        assert_eq!(result.expect("third call succeeds"), 3);
        assert_eq!(calls, 3);

        let (result, calls) = count_calls(RetryPolicy::attempts(4), Verdict::Final, 0);
        let failed = result.expect_err("final");
        assert_eq!(
            (failed.attempts, calls),
            (1, 1),
            "a final error is not retried"
        );
        assert_eq!(failed.to_string(), "fake failure");
    }

    #[test]
    fn a_time_bound_stops_retrying_once_spent() {
        let (result, calls) = count_calls(
            RetryPolicy::for_duration(Duration::from_millis(300)),
            Verdict::Retry,
            0,
        );
        let failed = result.expect_err("never succeeds");
        assert_eq!(failed.attempts, calls);
        assert!(calls >= 2, "retried within the bound: {calls}");
    }
}
