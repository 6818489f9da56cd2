//! Orchestration: the only place that joins core (policy, scope, report) and adapters
//! (git, checks, github).
