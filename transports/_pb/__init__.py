"""Generated protobuf code for Pipecat's frame wire format (see ``frames.proto``)."""
