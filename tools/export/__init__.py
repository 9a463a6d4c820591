"""`lightwire export`: the trajectories of lw.trajectories as JSONL and Parquet, in TRL's and verl's field names."""
