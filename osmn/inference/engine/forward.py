"""The inference forward pass: `OSMN.segment` for K objects in one frame, regrouped for speed.

Built from an `OSMN` by reading its public parts only: the segmentation network's convs,
pools, gamma slices and side outputs (`SegmentationNetwork.side_output`), and the spatial
modulator's inference-mode biases in affine form (`SpatialModulator.affine_biases`). Nothing
here changes the function; what changes is how it is computed (docs/performance.md):

* the frame is NOT repeated K times: everything before the first modulation runs once on the
  [1, ...] image and the first scale or bias broadcasts it to the K objects;
* VGG16: each modulated layer's scale and bias are one pass over the conv output
  (`modulation_pass`, with the bias relu(guide * scale + shift) computed inside the pass);
* VGG16: the side outputs, upsampling and fusion in the inference head (`inference_head`);
* VGG16 with the native kernel: each side block's last modulated layer, its max pool and its
  side taps as one op (`single_op_block_ends`), so that layer's map is never written to memory.

The lite (MobileNet) model runs its own `segment` with the batch broadcast: its depthwise
trunk has nothing of the above to gain.
"""

from __future__ import annotations

import tensorflow as tf

from osmn import config
from osmn.inference.engine import inference_head
from osmn.inference.engine.modulation_pass import modulate, modulate_pool_taps_native


def segment_objects(model, image, spatial_guides, gammas, head: str = "inference",
                    modulation_kernel: str = "xla", single_op_block_ends: bool = True):
    """Segment K objects in one frame with one batched pass (inference).

    Args:
        model: `osmn.model.OSMN` (any backbone, any dtype policy).
        image: [1, H, W, 3] float32, BGR minus mean.
        spatial_guides: [K, H, W, 1] float32, one guide per object.
        gammas: [K, G], one gamma per object (from `OSMN.gamma`, once per video).
        head: "inference" or "training". VGG16 only (ignored for lite): "inference" is the
            inference formulation (one-pass modulation, `inference_head`); "training" runs
            `OSMN.segment` (the training formulation). Same values up to rounding. Defaults to
            "inference".
        modulation_kernel: "xla" or "native" (`modulation_pass`; "native" cannot run inside an
            XLA-compiled function or a SavedModel). Defaults to "xla".
        single_op_block_ends: bool. With the native kernel, each side block's last modulated
            layer, pool and side taps as one op. False only to time the separate ops. Defaults
            to True.

    Returns:
        logits: [K, H, W, 1] float32.
    """
    if head not in ("inference", "training"):
        raise ValueError(f"head must be 'inference' or 'training', got {head!r}")
    if head == "inference" and model.model_config.backbone == "vgg16":
        biases = (model.spatial_modulator.affine_biases(spatial_guides)
                  if model.spatial_modulator is not None else None)
        gammas_used = gammas if model.visual_modulator is not None else None
        single_op = single_op_block_ends and modulation_kernel == "native"
        logits = _vgg16_logits(model.segmentation_network, image, gammas_used, biases,
                               modulation_kernel, single_op)
    else:
        logits = model.segment(image, spatial_guides, gammas, training=False)
    # Without any modulator nothing depends on the object: broadcast the one map to K.
    shape = tf.shape(spatial_guides)
    return tf.broadcast_to(logits, tf.stack([shape[0], shape[1], shape[2], 1]))


def _vgg16_logits(net, image, gammas, biases, kernel: str, single_op_block_ends: bool):
    """`SegmentationNetwork.call` in the inference formulation (see the module docstring).

    Args:
        net: `SegmentationNetwork`.
        image: [1, H, W, 3]; gammas: [K, G] or None; biases: {layer: `AffineBias`} or None.

    Returns:
        logits [max(1, K), H, W, 1] float32.
    """
    x = image
    taps, tap_biases = [], []
    pooled_already = False
    for block, convs in enumerate(net.conv_blocks, start=1):
        if block > 1 and not pooled_already:
            x = net.pools[block - 2](x)
        pooled_already, block_taps = False, None
        for conv in convs:
            x = conv(x)
            name = conv.name
            scaled = gammas is not None and name in net.gamma_slices
            bias = biases.get(name) if biases is not None else None
            if scaled:
                start, stop = net.gamma_slices[name]
            if bias is None:
                if scaled:
                    x = net.scale(x, gammas[:, start:stop])
                continue
            scales = (gammas[:, start:stop] if scaled
                      else tf.ones((tf.shape(bias.guide)[0], conv.filters), tf.float32))
            if single_op_block_ends and conv is convs[-1] and block in config.SIDE_OUTPUT_BLOCKS:
                side, rows = net.side_output(block)
                x, block_taps = modulate_pool_taps_native(
                    x, scales, bias.guide, bias.scale, bias.shift,
                    inference_head.tap_kernel(side, rows), pool=block < len(net.conv_blocks))
                pooled_already = True
                continue
            x = modulate(x, scales, bias.guide, bias.scale, bias.shift, kernel=kernel)
        if block in config.SIDE_OUTPUT_BLOCKS:
            side, rows = net.side_output(block)
            taps.append(block_taps if block_taps is not None
                        else inference_head.side_taps(x, side, rows))
            tap_biases.append(inference_head.tap_bias(side, rows))
    shape = tf.shape(image)
    return inference_head.head_logits(tuple(taps), tf.stack(tap_biases),
                                   tf.convert_to_tensor(net.fuse.bias), shape[1], shape[2])
