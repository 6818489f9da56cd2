//! Tests of the github area.
