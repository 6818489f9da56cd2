//! Tests of the scope area.
