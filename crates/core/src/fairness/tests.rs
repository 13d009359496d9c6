//! Metrics against hand-computed examples.

use super::*;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// Three classes, 9 samples. Rows = true class.
///   y=0: pred 0,0,1      y=1: pred 1,1,1      y=2: pred 0,1,2
fn example() -> ConfusionMatrix {
    ConfusionMatrix::from_pairs(
        3,
        &[0, 0, 0, 1, 1, 1, 2, 2, 2],
        &[0, 0, 1, 1, 1, 1, 0, 1, 2],
    )
}

#[test]
fn class_accuracy_overall_and_worst() {
    let m = ClassMetrics::from_confusion(&example());
    assert!(close(m.overall, 6.0 / 9.0));
    assert!(close(m.class_acc[0], 2.0 / 3.0));
    assert!(close(m.class_acc[1], 1.0));
    assert!(close(m.class_acc[2], 1.0 / 3.0));
    assert!(close(m.worst, 1.0 / 3.0));
    // 10% of 3 classes rounds up to one class: the worst.
    assert!(close(m.worst10, 1.0 / 3.0));
    assert_eq!(m.support, vec![3, 3, 3]);
}

#[test]
fn cfps_eq8_hand_computed_and_sums_to_one() {
    // Errors: (y0->1), (y2->0), (y2->1): 3 errors. FP counts: class0 1, class1 2, class2 0.
    let m = ClassMetrics::from_confusion(&example());
    assert!(close(m.cfps[0], 1.0 / 3.0));
    assert!(close(m.cfps[1], 2.0 / 3.0));
    assert!(close(m.cfps[2], 0.0));
    assert!(close(m.cfps.iter().sum::<f64>(), 1.0));
}

#[test]
fn cacc_eq7_hand_computed() {
    // Class 0: TP 2; TN = samples with y!=0 and pred!=0: y1 (3, all pred 1) + y2 pred 1,2 (2) = 5.
    // Class 1: TP 3; TN: y0 pred 0,0 (2) + y2 pred 0,2 (2) = 4.
    // Class 2: TP 1; TN: y0 (3) + y1 (3) = 6.
    let m = ClassMetrics::from_confusion(&example());
    assert!(close(m.cacc[0], 7.0 / 9.0));
    assert!(close(m.cacc[1], 7.0 / 9.0));
    assert!(close(m.cacc[2], 7.0 / 9.0));
    let cm = ConfusionMatrix::from_pairs(2, &[0, 0, 1, 1], &[0, 1, 1, 1]);
    let m = ClassMetrics::from_confusion(&cm);
    assert!(close(m.cacc[0], 3.0 / 4.0)); // TP 1 + TN 2 (y=1,pred=1 twice)
    assert!(close(m.cacc[1], 3.0 / 4.0)); // TP 2 + TN 1
}

#[test]
fn cfps_is_defined_without_errors_and_empty_matrix_is_safe() {
    let cm = ConfusionMatrix::from_pairs(3, &[0, 1, 2], &[0, 1, 2]);
    let m = ClassMetrics::from_confusion(&cm);
    assert_eq!(m.cfps, vec![0.0; 3]);
    assert!(m.cfps.iter().all(|x| x.is_finite()));
    assert!(close(m.overall, 1.0));
    let m = ClassMetrics::from_confusion(&ConfusionMatrix::new(4));
    assert_eq!(m.overall, 0.0);
    assert_eq!(m.worst, 0.0);
    assert!(m
        .class_acc
        .iter()
        .chain(&m.cfps)
        .chain(&m.cacc)
        .all(|x| x.is_finite()));
}

#[test]
fn worst_ten_percent_of_hundred_classes_is_mean_of_ten_lowest() {
    let acc: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
    // Lowest ten: 0.00 .. 0.09, mean 0.045.
    assert!(close(worst_fraction_mean(&acc, 0.10), 0.045));
    assert!(close(worst_fraction_mean(&[0.5, 0.2], 0.10), 0.2));
    assert_eq!(worst_fraction_mean(&[], 0.10), 0.0);
}

#[test]
fn worst_ignores_classes_without_samples() {
    // Class 2 never appears as a true label: it must not count as a 0% class.
    let cm = ConfusionMatrix::from_pairs(3, &[0, 0, 1, 1], &[0, 1, 1, 1]);
    let m = ClassMetrics::from_confusion(&cm);
    assert!(close(m.worst, 0.5));
}

#[test]
fn top_confusions_sorted_and_rows_roundtrip() {
    let cm = example();
    assert_eq!(cm.top_confusions(2, 5), vec![(0, 1), (1, 1)]);
    assert_eq!(cm.top_confusions(1, 5), vec![]);
    assert_eq!(ConfusionMatrix::from_rows(&cm.rows()), Some(cm.clone()));
    assert_eq!(ConfusionMatrix::from_rows(&[vec![1, 2], vec![3]]), None);
    assert_eq!(cm.total(), 9);
}

#[test]
fn out_of_range_pairs_are_ignored() {
    let cm = ConfusionMatrix::from_pairs(2, &[0, 5, -1, 1], &[0, 0, 0, 7]);
    assert_eq!(cm.total(), 1);
}

/// The paper reports the worst class up to 10 classes and the worst 10% beyond.
#[test]
fn paper_worst_switches_to_the_worst_ten_percent_beyond_ten_classes() {
    // 11 classes: class c has accuracy c/10 (class 10 is perfect): worst 0, worst 10% (2
    // classes) 0.05.
    let y: Vec<i64> = (0..11).flat_map(|c| std::iter::repeat_n(c, 10)).collect();
    let pred: Vec<i64> = y
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if (i % 10) < c as usize {
                c
            } else {
                (c + 1) % 11
            }
        })
        .collect();
    let m = ClassMetrics::from_confusion(&ConfusionMatrix::from_pairs(11, &y, &pred));
    assert!(close(m.worst, 0.0) && close(m.worst10, 0.05), "{m:?}");
    assert!(close(m.paper_worst(), 0.05));
    let three = ClassMetrics::from_confusion(&example());
    assert!(close(three.paper_worst(), three.worst));
}
