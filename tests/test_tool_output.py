"""The stderr filter the tool tests rely on keeps the tool's lines and drops only TF's own."""

from tool_output import error_lines, own_lines, single_error_line

STDERR = """WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1795572766.038193    4339 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU will not be used.
I0000 00:00:1795573626.688581    8006 port.cc:153] oneDNN custom operations are on.
To enable the following instructions: AVX2 AVX512F, in other operations, rebuild TensorFlow.
error: /tmp/x.keras: model file not found
"""


def test_tf_startup_lines_are_dropped_and_the_tools_line_kept():
    assert own_lines(STDERR) == ["error: /tmp/x.keras: model file not found"]
    assert single_error_line(STDERR) == "error: /tmp/x.keras: model file not found"


def test_a_second_line_of_the_tool_is_not_hidden():
    noisy = STDERR + "Traceback (most recent call last):\n"
    assert len(own_lines(noisy)) == 2
    assert error_lines(noisy) == ["error: /tmp/x.keras: model file not found"]
