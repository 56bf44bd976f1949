import Testing

/// The suites that block threads for long stretches: direct store calls (fsync, megabytes of
/// data), child processes. Swift Testing runs suites in parallel on the cooperative pool, which has
/// one thread per core; these run one at a time so they never take every thread and stall the
/// timing-sensitive tests (delivery delays, time-to-live) running beside them.
@Suite(.serialized) enum HeavyTests {}
