//! A token in the cache, with when to refresh it and when it expires.

use std::time::Duration;

use crate::response::Token;
use crate::secret::TokenText;
use crate::time::Moment;

/// The random shortening of a margin is a fraction of the margin, or of this
/// when the margin is longer (so at most 60 s for a token this process
/// refreshed, 120 s for one it got).
const SHORTENING_BASE_CAP: Duration = Duration::from_secs(600);

/// How this process came by a token, which decides how much of its margin
/// is given up, at random, before refreshing it.
///
/// Processes that share an app key but no cache (other hosts) all hold the
/// token a Get returns; the first of them to refresh it retires it for the
/// others, which then Get the new one. Shortening margins at random (never
/// lengthening them) keeps them from refreshing at once and the time
/// between two Refreshes near the configured one. A token this process
/// refreshed itself is refreshed first (0-10% shorter): its holders Got it
/// from this Refresh and wait longer (10-20% shorter), so the process that
/// refreshed last refreshes next and no two race to refresh one token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Obtained {
    /// This process's own Refresh answered it.
    ByRefresh,
    /// A Get answered it, or a sibling process through the shared cache:
    /// other processes may hold it and refresh it first.
    ByGet,
}

/// The managed path fetches at most once per this, however short the
/// tokens' lifetimes: a token is kept at least this long after its request
/// was sent, even when the gateway gave it less (`expire` 0 in a token's last
/// second), and refreshed no sooner.
pub(crate) const MIN_FETCH_INTERVAL: Duration = Duration::from_secs(1);

/// A token as answered to a request sent at `sent`.
#[derive(Debug)]
pub(crate) struct CachedToken {
    pub(crate) token: TokenText,
    sent: Moment,
    lifetime: Duration,
    margin: Duration,
    obtained: Obtained,
    refresh_at: Moment,
    expires_at: Moment,
}

impl CachedToken {
    /// `token`, answered to a request sent at `sent`. Refresh is due the
    /// margin, shortened by a part of it that `random` (0 to 1) places in the
    /// band of `obtained`, before expiry; or at half the lifetime when that
    /// margin is not shorter than the lifetime.
    pub(crate) fn new(
        mut token: Token,
        sent: Moment,
        margin: Duration,
        obtained: Obtained,
        random: f64,
    ) -> Self {
        let lifetime = Duration::from_secs(token.expire_s.max(0) as u64).max(MIN_FETCH_INTERVAL);
        let mut cached = CachedToken {
            token: TokenText::new(std::mem::take(&mut token.access_token)),
            sent,
            lifetime,
            margin,
            obtained,
            refresh_at: sent,
            expires_at: sent.later_by(lifetime),
        };
        cached.refresh_at = cached.refresh_time(random);
        cached
    }

    /// When refresh is due, with the margin shortened by 0-10% (a token
    /// refreshed here) or 10-20% (a token got), placed by `random`.
    fn refresh_time(&self, random: f64) -> Moment {
        let band_start = match self.obtained {
            Obtained::ByRefresh => 0.0,
            Obtained::ByGet => 0.1,
        };
        let fraction = band_start + 0.1 * random.clamp(0.0, 1.0);
        let shortening = self.margin.min(SHORTENING_BASE_CAP).mul_f64(fraction);
        let margin = self.margin.saturating_sub(shortening);
        let refresh_after = if margin >= self.lifetime {
            self.lifetime / 2
        } else {
            self.lifetime - margin
        };
        self.sent
            .later_by(refresh_after.max(MIN_FETCH_INTERVAL))
            .earliest(self.expires_at)
    }

    /// The same token with a new random shortening of its margin, in the
    /// same band (a forked child must not refresh in the same second as its
    /// parent).
    pub(crate) fn rejittered(&self, random: f64) -> CachedToken {
        CachedToken {
            token: self.token.clone(),
            refresh_at: self.refresh_time(random),
            ..*self
        }
    }

    /// More than the margin left: serve without asking the gateway.
    pub(crate) fn is_fresh(&self, now: Moment) -> bool {
        !self.refresh_at.has_passed(now)
    }

    /// Not yet expired by either clock.
    pub(crate) fn is_valid(&self, now: Moment) -> bool {
        !self.expires_at.has_passed(now)
    }

    /// When its request was sent, on the wall clock (UNIX ms).
    pub(crate) fn sent_wall_ms(&self) -> i64 {
        self.sent.wall_ms
    }

    /// Its lifetime as counted here (at least [`MIN_FETCH_INTERVAL`]).
    pub(crate) fn lifetime_s(&self) -> i64 {
        self.lifetime.as_secs() as i64
    }

    /// When refresh is due.
    pub(crate) fn refresh_at(&self) -> Moment {
        self.refresh_at
    }

    /// The same token, next refreshed no sooner than `pause` from `now`
    /// (nor later than its expiry).
    pub(crate) fn paused(&self, now: Moment, pause: Duration) -> CachedToken {
        CachedToken {
            token: self.token.clone(),
            refresh_at: now.later_by(pause).earliest(self.expires_at),
            ..*self
        }
    }

    /// Whole seconds until expiry (for logs).
    pub(crate) fn seconds_left(&self, now: Moment) -> u64 {
        self.expires_at.remaining_from(now).as_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(expire_s: i64) -> Token {
        Token {
            access_token: "tok".into(),
            expire_s,
        }
    }

    /// A token refreshed here, with a margin of `margin_s`, not shortened.
    fn refreshed(expire_s: i64, sent: Moment, margin_s: u64) -> CachedToken {
        let margin = Duration::from_secs(margin_s);
        CachedToken::new(token(expire_s), sent, margin, Obtained::ByRefresh, 0.0)
    }

    fn start() -> Moment {
        Moment {
            monotonic_ns: 1_000_000_000_000,
            wall_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn refresh_is_due_margin_before_expiry_or_at_half_life() {
        let sent = start();
        let cached = refreshed(7200, sent, 600);
        let at = |s: u64| sent.later_by(Duration::from_secs(s));
        assert!(cached.is_fresh(at(6599)));
        assert!(!cached.is_fresh(at(6600)));
        assert!(cached.is_valid(at(7199)));
        assert!(!cached.is_valid(at(7200)));

        let got = CachedToken::new(
            token(7200),
            sent,
            Duration::from_secs(600),
            Obtained::ByGet,
            0.0,
        );
        assert!(got.is_fresh(at(6659)), "a token got: at least 10% shorter");
        assert!(!got.is_fresh(at(6660)));
        let shortest =
            |obtained| CachedToken::new(token(7200), sent, Duration::from_secs(600), obtained, 1.0);
        assert!(
            !shortest(Obtained::ByRefresh).is_fresh(at(6660)),
            "a token refreshed: at most 10% shorter"
        );
        assert!(shortest(Obtained::ByRefresh).is_fresh(at(6659)));
        assert!(
            !shortest(Obtained::ByGet).is_fresh(at(6720)),
            "a token got: at most 20% shorter"
        );
        assert!(shortest(Obtained::ByGet).is_fresh(at(6719)));
        let capped = CachedToken::new(
            token(100_000),
            sent,
            Duration::from_secs(3000),
            Obtained::ByGet,
            1.0,
        );
        assert!(
            capped.is_fresh(at(100_000 - 2880 - 1)),
            "shortening capped at 20% of 600 s"
        );
        assert!(!capped.is_fresh(at(100_000 - 2880)));
        for random in [0.0, 0.3, 0.99, 1.0] {
            let refreshed = CachedToken::new(
                token(30),
                sent,
                Duration::from_secs(20),
                Obtained::ByRefresh,
                random,
            );
            let got = CachedToken::new(
                token(30),
                sent,
                Duration::from_secs(20),
                Obtained::ByGet,
                1.0 - random,
            );
            assert!(
                refreshed.refresh_at().monotonic_ns <= got.refresh_at().monotonic_ns,
                "the refresher's band comes first ({random})"
            );
        }

        let long_margin = refreshed(10, sent, 600);
        assert!(long_margin.is_fresh(at(4)));
        assert!(
            !long_margin.is_fresh(at(5)),
            "margin >= lifetime: half-life"
        );
    }

    #[test]
    fn either_clock_expires_the_token() {
        let sent = start();
        let cached = refreshed(100, sent, 10);
        let wall_stepped = Moment {
            wall_ms: sent.wall_ms + 100_000,
            ..sent
        };
        assert!(
            !cached.is_valid(wall_stepped),
            "wall clock stepped past expiry"
        );
        let suspended = Moment {
            monotonic_ns: sent.monotonic_ns + 100_000_000_000,
            ..sent
        };
        assert!(!cached.is_valid(suspended));
        assert!(!cached.is_fresh(suspended));
    }

    #[test]
    fn tiny_lifetimes_are_kept_one_second() {
        let sent = start();
        for expire in [-5, 0, 1] {
            let cached = refreshed(expire, sent, 600);
            let just_before = sent.later_by(MIN_FETCH_INTERVAL - Duration::from_millis(1));
            assert!(cached.is_fresh(just_before), "expire {expire}");
            assert!(!cached.is_valid(sent.later_by(MIN_FETCH_INTERVAL)));
        }
        let two = refreshed(2, sent, 600);
        assert!(two.is_fresh(sent.later_by(Duration::from_millis(999))));
        assert!(
            !two.is_fresh(sent.later_by(MIN_FETCH_INTERVAL)),
            "half-life"
        );
    }

    #[test]
    fn paused_token_waits_or_expires() {
        let now = start();
        let cached = refreshed(100, now, 90);
        let paused = cached.paused(now, Duration::from_secs(30));
        let later = |s: u64| now.later_by(Duration::from_secs(s));
        assert!(paused.is_fresh(later(29)));
        assert!(!paused.is_fresh(later(30)));
        let short = refreshed(10, now, 9).paused(now, Duration::from_secs(30));
        assert!(!short.is_fresh(later(10)), "never past expiry");
    }

    #[test]
    fn rejittering_moves_only_the_refresh_time() {
        let sent = start();
        let cached = refreshed(7200, sent, 600);
        let other = cached.rejittered(1.0);
        let at = |s: u64| sent.later_by(Duration::from_secs(s));
        assert!(!cached.is_fresh(at(6650)) && other.is_fresh(at(6650)));
        assert_eq!(other.seconds_left(sent), cached.seconds_left(sent));
        assert_eq!(*other.token, *cached.token);
    }
}
