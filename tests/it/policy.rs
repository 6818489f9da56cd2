//! Tests of the policy area.
