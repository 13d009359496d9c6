//! FRL refuses random weights, and a grid's FRL row starts from the last checkpoint of the same
//! seed's TRADES run: the dependency state an executor sees before, during and after that run.

use fairtat::config::grid::expand_with;
use fairtat::config::grid_init::dependency_order;
use fairtat::config::{from_toml_str, ConfigError};
use fairtat::runs::deps::{dependency_state, DependencyState};
use fairtat::runs::events::MemorySink;
use fairtat::runs::writer::EventWriter;
use fairtat::runs::{new_run_id, RunDir, RunEvent, RunStatus};
use fairtat::train::{Outcome, TrainError};
use tch::Tensor;

use super::{run_spec, serial, spec, tiny_splits, TINY};

#[test]
fn frl_refuses_to_start_without_a_checkpoint() {
    let _g = serial();
    for m in ["frl-rw", "frl-rwrm"] {
        let e = from_toml_str("", &[format!("method.name={m}")]).unwrap_err();
        assert_eq!(e.key(), Some("train.init_checkpoint"), "{e}");
        assert!(e.to_string().contains("random weights"), "{e}");
    }
    // A spec that got past the config (or was edited) is refused by the trainer too.
    let mut s = spec(&["method.name=frl-rw", "train.init_checkpoint=somewhere"]);
    s.train.init_checkpoint.clear();
    let tmp = tempfile::tempdir().unwrap();
    let e = run_spec(
        &s,
        tiny_splits(16, 2),
        tmp.path(),
        &mut MemorySink::default(),
    )
    .unwrap_err();
    assert!(matches!(e, TrainError::Invalid(_)), "{e}");
    assert!(e.to_string().contains("train.init_checkpoint"), "{e}");
    // `train.init_from` outside a grid names a row nobody resolved: a clear error, not random init.
    let mut s = spec(&["method.name=frl-rw", "train.init_from=trades"]);
    s.train.init_from_run.clear();
    let e = run_spec(
        &s,
        tiny_splits(16, 2),
        tmp.path(),
        &mut MemorySink::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("train.init_from"), "{e}");
}

fn presets(name: &str) -> Result<String, ConfigError> {
    Ok(match name {
        "rows/trades" => "[method]\nname = \"trades\"\n[train]\nlr = 0.05\n".to_string(),
        // lr 0: the FRL run's weights stay the ones it started from.
        "rows/frl" => {
            "[method]\nname = \"frl-rw\"\n[train]\ninit_from = \"trades\"\nlr = 0\n".to_string()
        }
        other => return fairtat::config::grid::no_presets(other),
    })
}

fn finish(run: &RunDir, status: RunStatus) {
    let mut w = EventWriter::open(run).unwrap();
    w.append(&RunEvent::Finished {
        status,
        epochs_done: 1,
        message: Some("test".into()),
    })
    .unwrap();
}

#[test]
fn grid_frl_row_starts_from_its_trades_runs_last_checkpoint() {
    let _g = serial();
    // The tiny settings apply to every row; the rows keep their own learning rates.
    let sets: Vec<String> = TINY
        .iter()
        .filter(|s| !s.starts_with("train.lr="))
        .chain(["train.epochs=1"].iter())
        .map(|s| s.to_string())
        .collect();
    let text = "name = \"g\"\n[grid]\npreset = [\"rows/frl\", \"rows/trades\"]\nseed = [3]\n";
    let specs = expand_with(text, &sets, "gid", &presets).unwrap().unwrap();
    let order = dependency_order(&specs).unwrap();
    let (trades, frl) = (&specs[order[0]], &specs[order[1]]);
    assert_eq!(trades.name, "g-trades-s3");
    assert_eq!(frl.train.init_from_run, "g-trades-s3");

    let runs = tempfile::tempdir().unwrap();
    let dir_of = |s: &fairtat::config::RunSpec| {
        let run = RunDir::new(runs.path().join(new_run_id(&s.name)));
        std::fs::create_dir_all(run.root()).unwrap();
        std::fs::write(run.config_toml(), s.to_toml()).unwrap();
        run
    };
    let frl_dir = dir_of(frl);
    // The source run does not exist yet: FRL cannot start.
    assert!(matches!(
        dependency_state(runs.path(), frl),
        DependencyState::Failed(_)
    ));
    let trades_dir = dir_of(trades);
    assert_eq!(
        dependency_state(runs.path(), frl),
        DependencyState::Waiting(trades_dir.id())
    );
    // Started before its source finished, FRL refuses (it would otherwise train from scratch).
    let e = run_spec(
        frl,
        tiny_splits(16, 2),
        frl_dir.root(),
        &mut MemorySink::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not finished"), "{e}");

    let out = run_spec(
        trades,
        tiny_splits(16, 2),
        trades_dir.root(),
        &mut MemorySink::default(),
    );
    assert!(matches!(out, Ok(Outcome::Finished { .. })), "{out:?}");
    // Trained but not yet marked finished: still waiting.
    assert!(matches!(
        dependency_state(runs.path(), frl),
        DependencyState::Waiting(_)
    ));
    finish(&trades_dir, RunStatus::Finished);
    let ck = trades_dir.checkpoint(fairtat::runs::CheckpointKind::Last);
    assert_eq!(
        dependency_state(runs.path(), frl),
        DependencyState::Ready(Some(ck.clone()))
    );

    let out = run_spec(
        frl,
        tiny_splits(16, 2),
        frl_dir.root(),
        &mut MemorySink::default(),
    );
    assert!(matches!(out, Ok(Outcome::Finished { .. })), "{out:?}");
    let sorted = |p: &std::path::Path| {
        let mut v = Tensor::read_safetensors(p).unwrap();
        v.sort_by(|x, y| x.0.cmp(&y.0));
        v
    };
    let (a, b) = (
        sorted(&ck),
        sorted(&frl_dir.checkpoint(fairtat::runs::CheckpointKind::Last)),
    );
    assert_eq!(a.len(), b.len());
    for ((n, x), (m, y)) in a.iter().zip(&b) {
        assert_eq!(n, m);
        let d = (x - y).abs().max().double_value(&[]);
        assert_eq!(d, 0.0, "{n}: FRL did not start from the TRADES weights");
    }
    // A source that was cancelled (after it finished once, a resume was stopped) fails the row.
    finish(&trades_dir, RunStatus::Cancelled);
    match dependency_state(runs.path(), frl) {
        DependencyState::Failed(why) => assert!(why.contains("cancelled"), "{why}"),
        other => panic!("{other:?}"),
    }
    // The trainer refuses too, even with the source's checkpoint path already recorded.
    let mut linked = frl.clone();
    linked.train.init_checkpoint = ck.display().to_string();
    let again = runs.path().join("again");
    let e = run_spec(
        &linked,
        tiny_splits(16, 2),
        &again,
        &mut MemorySink::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("cancelled"), "{e}");
    // No source run needed: ready at once.
    assert_eq!(
        dependency_state(runs.path(), trades),
        DependencyState::Ready(None)
    );
}
