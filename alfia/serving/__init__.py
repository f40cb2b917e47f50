"""The risk service and its web page (``alfia serve RUN``); see docs/serving.md."""
