"""Generated from proto/lightwire/v1 by scripts/gen_proto.py. Do not edit."""
