//! Adversarial attacks in [0,1] pixel space.
