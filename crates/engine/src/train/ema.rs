//! The exponential moving average of the whole model state (weights and BatchNorm buffers),
//! updated once per epoch after training; its first update is a copy (PKU-ML/CFA `train.py`).

use super::session::Session;

/// The decay of this epoch's update: 0 (a copy) until the average holds a model.
pub fn ema_decay(initialized: bool, decay: f64) -> f64 {
    if initialized {
        decay
    } else {
        0.0
    }
}

/// Update the EMA (when the run keeps one) with the live model; whether it is now an exact copy
/// of the live model (its test records are then the live model's, relabelled).
pub fn update(s: &mut Session) -> bool {
    let Some(ema) = &mut s.ema else {
        return false;
    };
    let decay = ema_decay(s.state.ema_initialized, s.spec.train.ema_decay);
    ema.avg.update(&s.model, decay);
    ema.avg.copy_into(&mut ema.model);
    s.state.ema_initialized = true;
    decay == 0.0
}

#[cfg(test)]
mod tests {
    use super::ema_decay;

    #[test]
    fn the_first_update_copies_then_the_configured_decay_applies() {
        assert_eq!(ema_decay(false, 0.999), 0.0);
        assert_eq!(ema_decay(true, 0.999), 0.999);
    }
}
