//! Tests of the checks area.
