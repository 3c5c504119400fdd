"""The web page: Gradio components wired to `osmn.inference.session` (which does the work).

One `AppSession` per browser tab (a `gr.State`): its temp folder, its frames and its
`SegmentationSession`. Closing the tab (Gradio's `unload` event, sent when the page's
heartbeat connection drops) closes it: a running propagation is cancelled and the temp folder
removed. Sessions without a page (API clients) are closed when Gradio expires their state.
"""

import pathlib
import shutil
import tempfile
import threading
from typing import List

import gradio as gr  # the optional extra: pip install -e ".[app]"
import numpy as np

from osmn.app.painting import brush_colours, labels_from_layers, layer_from_labels
from osmn.config import MAX_VIDEO_FRAMES
from osmn.errors import UserError
from osmn.inference import session as session_lib
from osmn.inference.frames import IMAGE_SUFFIXES

REPO = pathlib.Path(__file__).resolve().parents[2]
SAMPLE_VIDEO = REPO / "data" / "davis_sample" / "JPEGImages" / "480p" / "car-shadow"
CLOSE_WAIT_SECONDS = 120  # A closed tab's running propagation is awaited this long, then cleaned.
STATE_SECONDS = 12 * 3600  # A session untouched this long is closed (API clients send no unload).

HELP = """\
**1** Open a video (mp4 / mov / avi / mkv, a zip of frames, several frame images, or a folder
of frames), or the sample. **2** On any frame (slider), paint each object in its own colour with the brush
(eraser to fix), or draw a box around an object with its colour and press **Fill with
GrabCut**, or upload a mask PNG. **3** **Segment from this frame**: the objects are followed to
the end of the video. **4** Wrong somewhere? Go to that frame, repaint, segment again from
there: the earlier frames are kept. **5** Download the masks (zip, DAVIS layout) and the
overlay video."""


class AppSession:
    """One tab's video: temp folder, frames, masks. `close()` is idempotent."""

    def __init__(self, path, model, work_size, max_frames: int, name: str):
        """`path`: a video, zip or folder; or a list of uploaded files (`_stage_uploads`)."""
        self.workdir = pathlib.Path(tempfile.mkdtemp(prefix="osmn-app-"))
        self.name = name
        self.closed = False
        try:
            if isinstance(path, list):
                path = _stage_uploads(path, self.workdir, max_frames)
            frames = session_lib.open_frames(path, self.workdir, max_frames)
            self.session = session_lib.SegmentationSession(frames, model, work_size=work_size)
        except BaseException:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise

    def close(self) -> None:
        """Cancel a running propagation, then (in the background) remove the temp folder."""
        if self.closed:
            return
        self.closed = True
        self.session.cancel.set()

        def cleanup():
            lock = self.session._lock
            if lock.acquire(timeout=CLOSE_WAIT_SECONDS):
                lock.release()
            close = getattr(self.session.frames, "close", None)
            if close is not None:
                close()
            shutil.rmtree(self.workdir, ignore_errors=True)

        threading.Thread(target=cleanup, daemon=True).start()


def _delete_state(value) -> None:
    if isinstance(value, AppSession):
        value.close()


def _stage_uploads(files: List[str], workdir: pathlib.Path, max_frames: int) -> pathlib.Path:
    """One uploaded video or zip as is; frame images copied into one folder of the session
    (Gradio's cache, where uploads land, is emptied on its own schedule)."""
    if len(files) == 1 and pathlib.Path(files[0]).suffix.lower() not in IMAGE_SUFFIXES:
        return pathlib.Path(files[0])
    if len(files) > max_frames:
        raise UserError(f"{len(files)} frames; the limit is {max_frames}")
    folder = workdir / "uploaded"
    folder.mkdir()
    for file in files:
        file = pathlib.Path(file)
        if file.suffix.lower() not in IMAGE_SUFFIXES:
            raise UserError(f"{file.name}: several files must all be frame images "
                            f"({', '.join(IMAGE_SUFFIXES)})")
        if (folder / file.name).exists():
            raise UserError(f"{file.name}: two frames of that name")
        shutil.copyfile(file, folder / file.name)
    return folder


def build_app(model, work_size=None, max_frames: int = MAX_VIDEO_FRAMES):
    """The Gradio Blocks of the app, segmenting with `model` (an `osmn.inference.LocalEngine`, or
    an `osmn.model.OSMN`, which `VideoSegmenter` wraps in one)."""

    def fail(error: Exception):
        raise gr.Error(str(error), print_exception=False)

    def editor_value(app: AppSession, index: int):
        frame = app.session.frames.frame(index)
        labels = app.session.masks[index]
        if labels is None:
            labels = np.zeros(frame.shape[:2], np.uint8)
        return {"background": frame, "layers": [layer_from_labels(labels, app.session.palette)],
                "composite": None}

    def view(app: AppSession, index: int, status: str):
        """Outputs shared by every handler that changes the video or the frame."""
        count = len(app.session)
        # A slider needs maximum > minimum: a one-frame video gets 0..1, frozen at 0.
        return (app, gr.update(maximum=max(count - 1, 1), value=index, interactive=count > 1),
                editor_value(app, index), app.session.overlay(index), status)

    open_sessions = {}  # Gradio session hash -> AppSession, for the unload event

    def open_path(path, previous, name, request):
        try:
            app = AppSession(path, model, work_size, max_frames, name)
        except UserError as error:
            fail(error)  # the previous video stays open
        if isinstance(previous, AppSession):
            previous.close()
        for key in [k for k, v in open_sessions.items() if v.closed]:
            del open_sessions[key]  # closed by state expiry
        if request is not None and request.session_hash:
            open_sessions[request.session_hash] = app
        frames = app.session.frames
        height, width = app.session.frame_shape[:2]
        status = (f"Opened **{name}**: {len(frames)} frames, {width}x{height}, "
                  f"{frames.fps:g} fps. Make the mask of a frame, then Segment.")
        return view(app, 0, status) + (None, None)

    def close_tab(request: gr.Request):
        app = open_sessions.pop(getattr(request, "session_hash", None), None)
        if app is not None:
            app.close()

    def open_upload(files, app, request: gr.Request):
        if not files:
            fail(UserError("no file uploaded"))
        files = [str(f) for f in (files if isinstance(files, list) else [files])]
        return open_path(files, app, pathlib.Path(files[0]).stem if len(files) == 1
                         else "frames", request)

    def open_folder(files, app, request: gr.Request):
        # A folder upload also brings its other files (thumbnails, notes): frames only.
        images = [str(f) for f in (files or [])
                  if pathlib.Path(str(f)).suffix.lower() in IMAGE_SUFFIXES]
        if not images:
            fail(UserError(f"the folder holds no frames ({', '.join(IMAGE_SUFFIXES)})"))
        return open_upload(images, app, request)

    def open_sample(app, request: gr.Request):
        return open_path(SAMPLE_VIDEO, app, SAMPLE_VIDEO.name, request)

    def need(app) -> AppSession:
        if not isinstance(app, AppSession):
            fail(UserError("open a video first"))
        return app

    def show_frame(index, app):
        app = need(app)
        index = int(index)
        if not 0 <= index < len(app.session):
            fail(UserError(f"frame {index}: the video has frames 0..{len(app.session) - 1}"))
        done = app.session.masks[index] is not None
        return view(app, index, f"Frame {index}" + (" (segmented)" if done else ""))

    def editor_labels(app: AppSession, editor) -> np.ndarray:
        layers = (editor or {}).get("layers") or []
        return labels_from_layers(layers, app.session.frame_shape, app.session.palette)

    def fill_grabcut(index, editor, app):
        app = need(app)
        index = int(index)
        labels = editor_labels(app, editor)
        frame = app.session.frames.frame(index)
        ids = [int(i) for i in np.unique(labels) if i not in (0, 255)]
        if not ids:
            fail(UserError("draw a box (or any outline) around an object with its brush "
                           "colour first"))
        filled = np.zeros_like(labels)
        for object_id in ids:
            ys, xs = np.nonzero(labels == object_id)
            try:
                inside = session_lib.grabcut(frame, (xs.min(), ys.min(), xs.max() + 1,
                                                     ys.max() + 1))
            except UserError as error:
                fail(error)
            filled[inside & (filled == 0)] = object_id
        value = {"background": frame, "layers": [layer_from_labels(filled, app.session.palette)],
                 "composite": None}
        return value, f"GrabCut filled object(s) {', '.join(map(str, ids))} on frame {index}."

    def load_mask(file, index, app):
        app = need(app)
        index = int(index)
        if not file:
            fail(UserError("no mask uploaded"))
        try:
            labels = session_lib.first_labels(file, app.session.frame_shape)
        except UserError as error:
            fail(error)
        frame = app.session.frames.frame(index)
        value = {"background": frame, "layers": [layer_from_labels(labels, app.session.palette)],
                 "composite": None}
        return value, f"Mask loaded on frame {index}: press Segment."

    def clear_mask(index, app):
        app = need(app)
        frame = app.session.frames.frame(int(index))
        empty = np.zeros(frame.shape[:2], np.uint8)
        return {"background": frame, "layers": [layer_from_labels(empty)], "composite": None}

    def segment(index, editor, app, progress=gr.Progress()):
        app = need(app)
        index = int(index)
        labels = editor_labels(app, editor)
        session = app.session
        if index < len(session) - 1:
            progress((0, len(session) - index - 1), desc="Segmenting", unit="frames")
        try:
            last = session.propagate(
                index, labels, on_frame=lambda done, total: progress(
                    (done, total), desc="Segmenting", unit="frames"))
        except UserError as error:
            fail(error)
        if app.closed:  # the tab was closed: nothing to show, the temp folder goes
            return (gr.skip(),) * 7
        cancelled = last < len(session) - 1
        try:
            zip_path = app.workdir / f"{app.name}_masks.zip"
            mp4_path = app.workdir / f"{app.name}_overlay.mp4"
            count = session.write_masks_zip(zip_path, app.name)
            session.write_overlay_mp4(mp4_path)
        except UserError as error:
            fail(error)
        segmented = session.segmented()
        status = (f"{'Cancelled' if cancelled else 'Done'}: frames {index + 1}-{last} "
                  f"segmented from frame {index} ({session.seconds_per_frame:.2f} s/frame); "
                  f"{count} frames with masks ({segmented[0]}-{segmented[-1]}).")
        return view(app, index, status) + (str(mp4_path), [str(zip_path), str(mp4_path)])

    def cancel(app):
        if isinstance(app, AppSession) and app.session.running:
            app.session.cancel.set()
            return "Cancelling after the current frame..."
        return gr.skip()

    with gr.Blocks(title="OSMN video segmentation", delete_cache=(600, 3600)) as demo:
        gr.Markdown("## OSMN: segment objects through a video\n" + HELP)
        state = gr.State(None, time_to_live=STATE_SECONDS, delete_callback=_delete_state)
        with gr.Row():
            upload = gr.File(label="Video, zip of frames, or frame images",
                             file_count="multiple", height=170, elem_id="upload")
            with gr.Column():
                sample = gr.Button("Open the sample video", elem_id="open-sample")
                folder = gr.File(label="or a folder of frames", file_count="directory",
                                 height=110, elem_id="folder-upload")
                mask_file = gr.File(label="Mask PNG (optional)", file_types=[".png"],
                                    height=110, elem_id="mask-upload")
        status = gr.Markdown("Open a video to start.", elem_id="status")
        frame_slider = gr.Slider(0, 1, value=0, step=1, label="Frame", interactive=False,
                                 elem_id="frame")
        with gr.Row():
            with gr.Column():
                editor = gr.ImageEditor(
                    label="Mask of this frame (one colour per object)", type="numpy",
                    image_mode="RGBA", format="png", sources=(), transforms=(),
                    layers=gr.LayerOptions(allow_additional_layers=False, layers=["mask"]),
                    brush=gr.Brush(colors=brush_colours(), color_mode="fixed", default_size=6),
                    eraser=gr.Eraser(default_size=12), elem_id="editor")
                with gr.Row():
                    grabcut_button = gr.Button("Fill with GrabCut", elem_id="grabcut")
                    clear_button = gr.Button("Clear mask", elem_id="clear")
                with gr.Row():
                    segment_button = gr.Button("Segment from this frame", variant="primary",
                                               elem_id="segment")
                    cancel_button = gr.Button("Cancel", variant="stop", elem_id="cancel")
            with gr.Column():
                result = gr.Image(label="Result on this frame", type="numpy",
                                  interactive=False, elem_id="result")
                video = gr.Video(label="Result (overlay video)", interactive=False,
                                 elem_id="video")
                downloads = gr.File(label="Download", file_count="multiple",
                                    interactive=False, elem_id="downloads")

        viewed = [state, frame_slider, editor, result, status]
        upload.upload(open_upload, [upload, state], viewed + [video, downloads],
                      api_name="open_upload")
        folder.upload(open_folder, [folder, state], viewed + [video, downloads],
                      api_name="open_folder")
        sample.click(open_sample, [state], viewed + [video, downloads], api_name="open_sample")
        frame_slider.release(show_frame, [frame_slider, state], viewed, api_name="show_frame")
        mask_file.upload(load_mask, [mask_file, frame_slider, state], [editor, status],
                         api_name="load_mask")
        grabcut_button.click(fill_grabcut, [frame_slider, editor, state], [editor, status],
                             api_name="grabcut")
        clear_button.click(clear_mask, [frame_slider, state], [editor], api_name="clear_mask")
        segment_button.click(segment, [frame_slider, editor, state], viewed + [video, downloads],
                             api_name="segment", concurrency_limit=4)
        cancel_button.click(cancel, [state], [status], api_name="cancel",
                            concurrency_limit=None, queue=False)
        demo.unload(close_tab)
    return demo


def launch(demo, port: int = 7860, block: bool = True):
    """Serve `demo` on 127.0.0.1:`port`, offline: no share link, no analytics, system fonts.

    Returns (FastAPI app, local URL, share URL) as `gr.Blocks.launch`.
    """
    # Google-hosted fonts cannot be fetched offline: the system's fonts instead.
    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])
    return demo.queue(default_concurrency_limit=1).launch(
        server_name="127.0.0.1", server_port=port, share=False, inbrowser=False,
        prevent_thread_lock=not block, show_error=True, quiet=not block, theme=theme,
        ssr_mode=False)
