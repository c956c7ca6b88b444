"""Shipping a student: efficiency measurements, ONNX export, benches, model cards, the Hub, pipelines and the
cascade with its teacher."""
