//! Tests of the git area.
