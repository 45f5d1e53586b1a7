"""Cluster jobs: the engine interface and its registry (`engine`), the Ray Jobs engine
(`ray_jobs`), addresses, auth and tracking-server checks (`access`), submitting (`submit`) and
watching or stopping (`control`). Import the submodules."""
