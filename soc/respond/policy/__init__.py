"""The playbook recommender: a policy trained on a simulated SOC that only recommends.

- :mod:`soc.respond.policy.env`: the simulator (a gymnasium environment), the
  actions and the playbooks they stand for, and :func:`~soc.respond.policy.env.features`.
- :mod:`soc.respond.policy.train`: PPO training, evaluation, the baselines, saving.
- :mod:`soc.respond.policy.recommend`: :class:`~soc.respond.policy.recommend.Recommender`.
- :mod:`soc.respond.policy.feedback`: stored analyst answers → the simulator's priors.

Nothing here imports torch or stable-baselines3 until a model is trained or used.
"""
