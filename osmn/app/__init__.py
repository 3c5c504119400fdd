"""The local web app (`osmn-app`, `python tools/app.py`): Gradio wiring over
`osmn.inference.session`. Needs the optional extra: `pip install -e ".[app]"`."""
