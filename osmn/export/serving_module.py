"""The serving signatures of OSMN as a `tf.Module`, ready for `tf.saved_model.save`.

Every image-like tensor that crosses a signature boundary is RGB, float32, values 0..255 (uint8
pixel values cast to float32; the TF Serving REST API carries them as JSON numbers). The
conversion to the model's convention (BGR minus `config.MEAN_BGR`, `osmn.preprocessing`) happens
inside the graph, so clients need no knowledge of it. The visual guide is RGB too: the object
crop resized to 224x224 with its background set to the mean colour (RGB 123, 117, 104), which is
exactly the original's "background 0 after mean subtraction" once converted.

Signatures (B = objects, H, W = frame size, G = `ModelConfig.gamma_size`; every dimension but
the channels and G is dynamic):

    serving_default  image [B|1,H,W,3], visual_guide [B,224,224,3], spatial_guide [B,H,W,1]
                     -> probability [B,H,W,1]
    gamma            visual_guide [B,224,224,3] -> gamma [B,G]             (once per object)
    segment          image [B|1,H,W,3], spatial_guide [B,H,W,1], gamma [B,G]
                     -> probability [B,H,W,1]                             (every frame)
    spatial_guide    mask [B,H,W] (foreground where > 0) -> spatial_guide [B,H,W,1]
    visual_guide     image [B|1,H,W,3], mask [B,H,W] -> visual_guide [B,224,224,3]

An image with batch 1 is shared by all B objects (one frame, several objects), so a client sends
each frame once. `probability` is sigmoid(logits); the original thresholds it at
`config.MASK_THRESHOLD` (> 0.5). The guides reuse `osmn.guides` (test-time visual guide, Gaussian
spatial guide without perturbation), so the graph holds only stock TensorFlow ops.
"""

from __future__ import annotations

import tensorflow as tf

from osmn import config, guides
from osmn.preprocessing import to_model_input

# Names of the signatures, in the order the documentation lists them.
SIGNATURES = ("serving_default", "gamma", "segment", "spatial_guide", "visual_guide")


def guide_to_rgb(guide: tf.Tensor) -> tf.Tensor:
    """Inverse of `to_model_input` without rounding: [..., 3] BGR-minus-mean -> RGB float32.

    A background value of 0 becomes the mean colour, so `to_model_input` of the result gives
    back the original guide (exactly for the background, to float32 rounding elsewhere).
    """
    return tf.reverse(guide + tf.constant(config.MEAN_BGR, tf.float32), axis=[-1])


def _broadcast_image(image: tf.Tensor, batch: tf.Tensor) -> tf.Tensor:
    """[1 or B, H, W, 3] -> [B, H, W, 3] (an InvalidArgument error for any other batch)."""
    return tf.broadcast_to(image, tf.concat([[batch], tf.shape(image)[1:]], axis=0))


def _assert_same_size(image: tf.Tensor, other: tf.Tensor, other_name: str):
    return tf.debugging.assert_equal(
        tf.shape(image)[1:3], tf.shape(other)[1:3],
        message=f"image and {other_name} must have the same height and width")


def _assert_batch_one_or(image: tf.Tensor, batch: tf.Tensor):
    image_batch = tf.shape(image)[0]
    return tf.debugging.Assert(
        tf.logical_or(tf.equal(image_batch, 1), tf.equal(image_batch, batch)),
        ["image batch must be 1 or the guides' batch; got", image_batch, batch])


class OSMNServingModule(tf.Module):
    """Wraps an `OSMN` Keras model; its `tf.function`s are the SavedModel's signatures.

    Args:
        model: `osmn.model.OSMN`, any configuration (ablations included). Used in inference
            mode (batch norm moving statistics, no dropout).

    Attributes:
        gamma_size: int G, the length of `gamma`.
        model_variables: the model's `tf.Variable`s, tracked so `tf.saved_model.save` writes them.
    """

    def __init__(self, model, name: str = "osmn_serving"):
        super().__init__(name=name)
        self.gamma_size = int(model.gamma_size)
        # Track the variables only; the Keras object itself stays out of the SavedModel's object
        # graph (as keras.export.ExportArchive does), so loading needs no osmn or Keras class.
        self.model_variables = [getattr(v, "value", v) for v in model.variables]
        keras_model = model

        image = tf.TensorSpec([None, None, None, 3], tf.float32, name="image")
        spatial = tf.TensorSpec([None, None, None, 1], tf.float32, name="spatial_guide")
        visual = tf.TensorSpec([None, config.VISUAL_GUIDE_SIZE, config.VISUAL_GUIDE_SIZE, 3],
                               tf.float32, name="visual_guide")
        gamma_spec = tf.TensorSpec([None, self.gamma_size], tf.float32, name="gamma")
        mask = tf.TensorSpec([None, None, None], tf.float32, name="mask")

        def compute_gamma(visual_guide):
            gamma = keras_model.gamma(to_model_input(visual_guide), training=False)
            return tf.cast(gamma, tf.float32)

        def segment(image, spatial_guide, gamma):
            # An image of batch 1 goes in as is: the layers before the first modulation run
            # once for all objects (batch broadcasting in `OSMN.segment`); the output is
            # broadcast to B for models without modulators.
            shape = tf.shape(spatial_guide)
            with tf.control_dependencies([
                    _assert_same_size(image, spatial_guide, "spatial_guide"),
                    _assert_batch_one_or(image, shape[0])]):
                image = tf.identity(image)
            logits = keras_model.segment(to_model_input(image), spatial_guide, gamma,
                                         training=False)
            return tf.broadcast_to(tf.sigmoid(tf.cast(logits, tf.float32)),
                                   tf.concat([shape[:3], [1]], axis=0))

        @tf.function(input_signature=[visual])
        def gamma_fn(visual_guide):
            """visual_guide [B,224,224,3] RGB 0..255 -> {"gamma": [B,G] float32}."""
            return {"gamma": compute_gamma(visual_guide)}

        @tf.function(input_signature=[image, spatial, gamma_spec])
        def segment_fn(image, spatial_guide, gamma):
            """image [B|1,H,W,3] RGB 0..255, spatial_guide [B,H,W,1], gamma [B,G]
            -> {"probability": [B,H,W,1] float32}."""
            return {"probability": segment(image, spatial_guide, gamma)}

        @tf.function(input_signature=[image, visual, spatial])
        def serving_default_fn(image, visual_guide, spatial_guide):
            """One pass of the whole model -> {"probability": [B,H,W,1] float32}."""
            return {"probability": segment(image, spatial_guide, compute_gamma(visual_guide))}

        @tf.function(input_signature=[mask])
        def spatial_guide_fn(mask):
            """mask [B,H,W] (foreground where > 0) -> {"spatial_guide": [B,H,W,1] float32}.

            `osmn.guides.spatial_guide` per mask; an empty mask gives an all-zero guide.
            """
            out = tf.map_fn(guides.spatial_guide, mask,
                            fn_output_signature=tf.TensorSpec([None, None, 1], tf.float32))
            return {"spatial_guide": out}

        @tf.function(input_signature=[image, mask])
        def visual_guide_fn(image, mask):
            """image [B|1,H,W,3] RGB 0..255, mask [B,H,W]
            -> {"visual_guide": [B,224,224,3] float32 RGB, background = mean colour}.

            `osmn.guides.visual_guide` (test-time box, 3% padding) per mask; an empty mask gives
            an all-mean-colour guide (all zero in the model's convention).
            """
            with tf.control_dependencies([_assert_same_size(image, mask[..., None], "mask")]):
                images = _broadcast_image(image, tf.shape(mask)[0])
            out = tf.map_fn(lambda pair: guides.visual_guide(pair[0], pair[1]), (images, mask),
                            fn_output_signature=tf.TensorSpec(visual.shape[1:], tf.float32))
            return {"visual_guide": guide_to_rgb(out)}

        self.serving_default = serving_default_fn
        self.gamma = gamma_fn
        self.segment = segment_fn
        self.spatial_guide = spatial_guide_fn
        self.visual_guide = visual_guide_fn

    def signatures(self) -> dict:
        """Signature name -> concrete function, for `tf.saved_model.save(signatures=...)`."""
        return {name: getattr(self, name).get_concrete_function() for name in SIGNATURES}
