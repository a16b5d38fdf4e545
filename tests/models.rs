//! Model structure: parameter counts against EDSR-PyTorch, pixel-shuffle order, key mapping.

use burn::tensor::{Tensor, TensorData};
use odm::backend::Cpu;
use odm::models::layers::pixel_shuffle;
use odm::models::Model;
use odm::spec::{EdsrSpec, ModelSpec};

fn edsr(scale: usize) -> Model {
    Model::from_spec(&ModelSpec::Edsr(EdsrSpec::default()), scale)
}

/// EDSR-baseline (16 blocks, 64 features), counted by hand:
/// head 3·64·9 + 64 = 1 792; each block 2·(64·64·9 + 64) = 73 856, ×16 = 1 181 696;
/// last body conv 64·64·9 + 64 = 36 928; one ×2 upsampler conv 64·256·9 + 256 = 147 712;
/// tail 64·3·9 + 3 = 1 731.
/// ×2: 1 792 + 1 181 696 + 36 928 + 147 712 + 1 731 = 1 369 859 (EDSR-PyTorch: 1.37 M).
/// ×4: two upsampler convs: 1 369 859 + 147 712 = 1 517 571 (EDSR-PyTorch: 1.52 M).
/// ×3: one conv 64·576·9 + 576 = 332 352: 1 792 + 1 181 696 + 36 928 + 332 352 + 1 731 = 1 554 499.
#[test]
fn edsr_baseline_parameter_counts() {
    let count = |s| {
        edsr(s)
            .decls()
            .iter()
            .map(|d| d.shape.iter().product::<usize>())
            .sum::<usize>()
    };
    assert_eq!(count(2), 1_369_859);
    assert_eq!(count(3), 1_554_499);
    assert_eq!(count(4), 1_517_571);
}

#[test]
fn pixel_shuffle_matches_pytorch_order() {
    // Input 1×4×1×2, r = 2: channel k = i·2 + j goes to (i, w·2 + j).
    // Channel values: c0 = [0, 1], c1 = [10, 11], c2 = [20, 21], c3 = [30, 31].
    let x = Tensor::<Cpu, 4>::from_data(
        TensorData::new(vec![0f32, 1., 10., 11., 20., 21., 30., 31.], [1, 4, 1, 2]),
        &Default::default(),
    );
    let y = pixel_shuffle(x, 2);
    assert_eq!(y.dims(), [1, 1, 2, 4]);
    let v = y.to_data().to_vec::<f32>().unwrap();
    // Row 0 (i = 0): w0 → c0,c1 = 0,10; w1 → 1,11. Row 1 (i = 1): 20,30,21,31.
    assert_eq!(v, vec![0., 10., 1., 11., 20., 30., 21., 31.]);
}

#[test]
fn names_map_to_edsr_pytorch_keys() {
    let m = edsr(4);
    let pairs = [
        ("head.weight", "head.0.weight"),
        ("body.0.conv1.weight", "body.0.body.0.weight"),
        ("body.15.conv2.bias", "body.15.body.2.bias"),
        ("body_end.weight", "body.16.weight"),
        ("upsample.0.weight", "tail.0.0.weight"),
        ("upsample.1.bias", "tail.0.2.bias"),
        ("tail.weight", "tail.1.weight"),
    ];
    for (ours, theirs) in pairs {
        assert_eq!(m.pytorch_key(ours), theirs);
    }
}
