"""Worker groups: several processes, one per device, that act as one consumer and run each job together.

Rank 0 leads: it is the ordinary worker (queue, leases, intake, storage, events, HTTP) whose model runner, for each
pipeline call, tells the followers what to run and, at every denoising step, whether to go on (worker.group.lockstep).
Every rank holds the model with its denoiser split over the group (models.parallel); only the leader decodes, encodes
and uploads. The group fails as one: a member that dies or hangs ends it within `group_timeout_s`, and the
supervisor (worker.supervisor) starts it again whole; the leader's entries then follow the usual lease rules.
"""
