"""Mutant backends: the NumPy backend with one realistic bug each.

Every mutant subclasses :class:`backends.numpy_backend.NumpyBackend` and
overrides exactly one operation of the contract with a bug of the kind people
ship (a train/eval mix-up, a biased running variance, a missing rescale, a
forgotten bias correction, a standard deviation off by a constant, an unstable
formula). Its docstring says what the bug is and which property should catch
it; its class attributes say the same for tools:

* ``name``: ``"mutant-..."``, the backend name in test ids;
* ``family``: one of :data:`FAMILIES`, the kind of op it breaks;
* ``expected_killers``: the property families (test modules without
  ``test_``) expected to fail on it.

The property suite must fail every mutant: ``python -m backends.mutants.run``
(or ``nox -s mutants``) runs the suite against each and prints which
properties killed it.
"""

from __future__ import annotations

#: The kinds of op the mutants break; every one has at least one mutant.
FAMILIES: tuple[str, ...] = (
    "conv",
    "pooling",
    "batchnorm",
    "dropout",
    "initializers",
    "optimizers",
    "losses",
    "activations",
    "clipping",
    "precision",  # every operation, computed in a narrower dtype than promised
)

#: Every mutant: backend name -> import path (``--backend`` spec).
MUTANTS: dict[str, str] = {
    # conv
    "mutant-conv-flipped-kernel": "backends.mutants.conv:flipped_kernel",
    "mutant-conv-one-sided-padding": "backends.mutants.conv:one_sided_padding",
    "mutant-conv-bias-grad-averaged": "backends.mutants.conv:bias_grad_averaged",
    # pooling
    "mutant-maxpool-grad-to-every-tie": "backends.mutants.pooling:every_tie",
    "mutant-maxpool-zero-padding": "backends.mutants.pooling:zero_padding",
    "mutant-avgpool-grad-not-divided": "backends.mutants.pooling:avgpool_not_divided",
    # batch norm
    "mutant-bn-biased-running-var": "backends.mutants.batchnorm:biased_running_var",
    "mutant-bn-eval-uses-batch-stats": (
        "backends.mutants.batchnorm:eval_uses_batch_stats"
    ),
    "mutant-bn-momentum-swapped": "backends.mutants.batchnorm:momentum_swapped",
    "mutant-bn-backward-no-variance-term": (
        "backends.mutants.batchnorm:backward_no_variance_term"
    ),
    "mutant-layer-norm-unbiased-variance": (
        "backends.mutants.batchnorm:layer_norm_unbiased_variance"
    ),
    # dropout
    "mutant-dropout-not-rescaled": "backends.mutants.dropout:not_rescaled",
    "mutant-dropout-eval-applies-mask": "backends.mutants.dropout:eval_applies_mask",
    "mutant-dropout-mask-keeps-p": "backends.mutants.dropout:mask_keeps_p",
    "mutant-dropout-backward-not-rescaled": (
        "backends.mutants.dropout:backward_not_rescaled"
    ),
    "mutant-dropout-mask-fixed-count-per-row": (
        "backends.mutants.distributions:dropout_mask_fixed_count_per_row"
    ),
    # initializers
    "mutant-init-xavier-normal-notes-typo": (
        "backends.mutants.initializers:xavier_normal_notes_typo"
    ),
    "mutant-init-he-normal-no-gain": "backends.mutants.initializers:he_normal_no_gain",
    "mutant-init-xavier-uniform-bound-as-std": (
        "backends.mutants.initializers:xavier_uniform_bound_as_std"
    ),
    "mutant-init-normal-truncated": "backends.mutants.distributions:normal_truncated",
    "mutant-init-normal-truncated-rescaled": (
        "backends.mutants.distributions:normal_truncated_rescaled"
    ),
    # optimizers
    "mutant-adam-no-bias-correction": (
        "backends.mutants.optimizers:adam_no_bias_correction"
    ),
    "mutant-adamw-decay-in-gradient": (
        "backends.mutants.optimizers:adamw_decay_in_gradient"
    ),
    "mutant-sgd-momentum-dampened": "backends.mutants.optimizers:sgd_momentum_dampened",
    "mutant-adagrad-accumulates-after-step": (
        "backends.mutants.optimizers:adagrad_accumulates_after_step"
    ),
    "mutant-rmsprop-decay-complement": (
        "backends.mutants.optimizers:rmsprop_decay_complement"
    ),
    "mutant-sgd-nesterov-old-buffer": (
        "backends.mutants.optimizer_forms:sgd_nesterov_old_buffer"
    ),
    "mutant-sgd-decay-outside-momentum": (
        "backends.mutants.optimizer_forms:sgd_decay_outside_momentum"
    ),
    # clipping
    "mutant-clip-per-tensor": "backends.mutants.clipping:per_tensor",
    "mutant-clip-always-rescales": "backends.mutants.clipping:always_rescales",
    # losses
    "mutant-bce-logits-naive": "backends.mutants.losses:bce_logits_naive",
    "mutant-cross-entropy-summed": "backends.mutants.losses:cross_entropy_summed",
    "mutant-mse-mean-over-elements": "backends.mutants.losses:mse_mean_over_elements",
    "mutant-hinge-counts-correct-class": (
        "backends.mutants.losses:hinge_counts_correct_class"
    ),
    "mutant-bce-without-clamp": "backends.mutants.conventions:bce_without_clamp",
    # activations
    "mutant-softmax-no-max-shift": "backends.mutants.activations:softmax_no_max_shift",
    "mutant-softplus-naive": "backends.mutants.activations:softplus_naive",
    "mutant-sigmoid-backward-from-input": (
        "backends.mutants.activations:sigmoid_backward_from_input"
    ),
    "mutant-leaky-relu-backward-as-relu": (
        "backends.mutants.activations:leaky_relu_backward_as_relu"
    ),
    "mutant-gelu-exact-as-tanh": "backends.mutants.activations:gelu_exact_as_tanh",
    "mutant-silu-backward-sigmoid-not-complemented": (
        "backends.mutants.activations:silu_backward_sigmoid_not_complemented"
    ),
    "mutant-relu-gradient-one-at-zero": (
        "backends.mutants.conventions:relu_gradient_one_at_zero"
    ),
    # precision
    "mutant-float64-in-float32": "backends.mutants.precision:float64_in_float32",
}
