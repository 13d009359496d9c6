//! Watchers of jobs whose process this host sees (our own children and adopted processes): a
//! trainer is followed through its events until its run ends, an evaluation is waited for;
//! then its slot is freed and what waits starts.

use std::time::Duration;

use super::job_ended;
use crate::follower::{follow, Liveness};
use crate::state::AppState;
use fairtat_core::runs::{RunDir, RunId};

/// Follow a trainer until its run ends, then free its slot.
pub fn watch_trainer(st: AppState, dir: RunDir, live: Liveness, history_seq: Option<u64>) {
    tokio::spawn(async move {
        let Some(run) = dir.run_id() else { return };
        if follow(&st, dir, live, history_seq).await {
            st.blocking(move |st| job_ended(st, &run)).await;
        }
    });
}

/// Wait for an evaluation process to end, then free its slot and refresh the run's page.
pub fn watch_eval(st: AppState, run: RunId, mut live: Liveness) {
    tokio::spawn(async move {
        while live.gone_async().await.is_none() {
            tokio::select! {
                _ = st.shutdown_token().cancelled() => return,
                _ = live.changed(st.poll().max(Duration::from_millis(50))) => {}
            }
        }
        tracing::info!(run = %run, "evaluation ended");
        st.blocking(move |st| {
            job_ended(st, &run);
            if let Ok(Some(summary)) = st.index().get(&run) {
                st.hub().status(&summary);
            }
        })
        .await;
    });
}
