-- The NIP-98 replay cache is checked in the same statement as the caller's rate limit
-- (README, "Who may do what"), and like `rate_limits` it is unlogged: no WAL flush per
-- signed request. A crash empties it, so an event signed in the minute before a crash
-- could be accepted once more after it; every other replay is refused.
ALTER TABLE nip98_seen SET UNLOGGED;
