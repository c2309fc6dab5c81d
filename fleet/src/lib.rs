//! fleet: simulated trackers.
