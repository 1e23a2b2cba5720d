"""What the emails say: the sequence file and the rendering of its templates."""
