"""benchmarks/update_variants.py's arithmetic: the update's operation count and oneDNN's log."""

from benchmarks.update_variants import kernel_ms, update_flops


def test_update_flops_counts_both_forward_passes_and_the_backward_pass():
    # per screen, multiply-adds of each layer: 20x20 positions x 32 filters x 4x8x8 taps, ...
    layers = [400 * 32 * 256, 81 * 64 * 512, 49 * 64 * 576, 3136 * 512, 512 * 6]
    forward = sum(layers)
    backward = forward + sum(layers[1:])  # no gradient for the screen itself
    assert update_flops(32) == 2 * 32 * (2 * forward + backward) == 2_182_873_088


def test_kernel_ms_sums_each_kernel_per_update_and_skips_other_lines():
    conv = ("onednn_verbose,v1,primitive,exec,cpu,convolution,jit:avx2,forward_training,src:f32::blocked:abcd::f0 "
            "wei:f32,attr-scratchpad:user,,mb32_ic4oc32_ih84oh20kh8sh4dh0ph0_iw84ow20kw8sw4dw0pw0,{ms}")
    reorder = ("onednn_verbose,v1,primitive,exec,cpu,reorder,jit:uni,undef,src:f32::blocked:abcd::f0 "
               "dst:f32::blocked:Acdb8a::f0,attr-scratchpad:user,,32x4x8x8,{ms}")
    lines = [conv.format(ms=2.0), reorder.format(ms=0.5), conv.format(ms=4.0),
             "onednn_verbose,v1,primitive,create:cache_miss,cpu,convolution,jit:avx2,forward_training,,,,x,0.3",
             "onednn_verbose,v1,info,oneDNN v3.12.0", "[Powered by Stella]"]
    ms = kernel_ms(lines, updates=2)
    assert ms == {"convolution jit:avx2 forward_training mb32_ic4oc32_ih84oh20kh8sh4dh0ph0_iw84ow20kw8sw4dw0pw0": 3.0,
                  "reorder jit:uni undef": 0.25}
    assert list(ms)[0].startswith("convolution")  # the costliest first
