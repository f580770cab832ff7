"""The classifier: the network (detector), its input transform, checkpoint files and fp16 export."""
