//! The API JSON decoder (tasks, task lists, pull requests) on arbitrary bytes, and what the
//! gate computes from a decoded task (cost, artifacts, final state): never a panic.
#![no_main]

use agent_gate::adapters::github::task_cost;
use agent_gate::adapters::github::types::{PullRequest, Task, TaskList};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(task) = serde_json::from_slice::<Task>(data) {
        let _ = task_cost(&task).ai_credits();
        let _ = task.state.is_final();
        for a in &task.artifacts {
            let _ = a.decode();
        }
    }
    let _ = serde_json::from_slice::<TaskList>(data);
    let _ = serde_json::from_slice::<PullRequest>(data);
});
