"""A minimal client of TF Serving's REST predict API (numpy, json and urllib only; no TF).

Protocol (https://www.tensorflow.org/tfx/serving/api_rest, "Predict API"):

    POST {server}/v1/models/{model}[/versions/{N}]:predict
    {"signature_name": "segment", "inputs": {"image": [...], "gamma": [...], ...}}

answered by `{"outputs": {name: value, ...}}`, or `{"outputs": value}` when the signature has a
single output (TF Serving then drops the name), or `{"error": "..."}` with an HTTP error status.
Tensors travel as nested JSON lists; float32 inputs may be sent as JSON integers.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from typing import Dict, Optional

import numpy as np

from osmn.errors import UserError


class ServingClient:
    """Calls the signatures of one model on a TF Serving REST endpoint.

    Args:
        server: str. Base URL, e.g. "http://localhost:8501".
        model: str. Model name (TF Serving's `--model_name` / docker `MODEL_NAME`).
        version: optional int. A specific version; None lets the server pick (the highest).
        timeout: float. Seconds to wait for one answer.

    Attributes:
        requests: int. Predict requests sent.
        bytes_sent, bytes_received: int. Sizes of the JSON bodies.

    Raises:
        UserError: a bad server URL, version or timeout.
    """

    def __init__(self, server: str, model: str, version: Optional[int] = None,
                 timeout: float = 120.0):
        if not server.startswith(("http://", "https://")):
            raise UserError(f"--server must start with http:// or https://, got {server!r}")
        if not model or "/" in model or ":" in model:
            raise UserError(f"--model_name must be a model name without '/' or ':', got {model!r}")
        if version is not None and int(version) < 1:
            raise UserError(f"--version must be a positive integer, got {version!r}")
        if not timeout > 0:
            raise UserError(f"--timeout must be positive, got {timeout!r}")
        self.server = server.rstrip("/")
        self.model = model
        self.version = None if version is None else int(version)
        self.timeout = float(timeout)
        self.requests = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    @property
    def predict_url(self) -> str:
        version = "" if self.version is None else f"/versions/{self.version}"
        return f"{self.server}/v1/models/{self.model}{version}:predict"

    @staticmethod
    def request_body(signature: str, inputs: Dict[str, np.ndarray]) -> dict:
        """The columnar ("inputs") request body for `signature`."""
        return {"signature_name": signature,
                "inputs": {name: np.asarray(value).tolist() for name, value in inputs.items()}}

    def predict(self, signature: str, inputs: Dict[str, np.ndarray], output: str) -> np.ndarray:
        """Run `signature` on `inputs` and return its output tensor `output` as float32.

        Args:
            signature: signature name ("gamma", "segment", ...).
            inputs: input name -> array (any numeric dtype; sent as JSON numbers).
            output: the output's name (needed when the server drops it for a single output).

        Raises:
            UserError: server unreachable, an error answer (its message is included), a timeout
                or an answer without the expected output.
        """
        url = self.predict_url
        data = json.dumps(self.request_body(signature, inputs)).encode("utf-8")
        request = urllib.request.Request(url, data=data, method="POST",
                                         headers={"Content-Type": "application/json"})
        self.requests += 1
        self.bytes_sent += len(data)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as error:
            raise UserError(f"{url} ({signature}): server answered HTTP {error.code}: "
                            f"{_error_message(error.read())}") from None
        except urllib.error.URLError as error:
            raise UserError(f"{self.server}: cannot reach the TF Serving REST API "
                            f"({error.reason})") from None
        except (socket.timeout, TimeoutError):
            raise UserError(f"{url} ({signature}): no answer within --timeout "
                            f"{self.timeout:g} s") from None
        self.bytes_received += len(raw)
        try:
            outputs = json.loads(raw)["outputs"]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{url} ({signature}): not a predict answer: "
                            f"{raw[:200].decode('utf-8', 'replace')!r}") from None
        if isinstance(outputs, dict):
            if output not in outputs:
                raise UserError(f"{url} ({signature}): answer lacks output {output!r} "
                                f"(has {', '.join(sorted(outputs))})")
            outputs = outputs[output]
        return np.asarray(outputs, np.float32)


def _error_message(body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    try:
        return str(json.loads(text)["error"]).splitlines()[0]
    except (ValueError, KeyError, TypeError, IndexError):
        return text.strip().splitlines()[0] if text.strip() else "(empty answer)"
