"""Preference and RL training that keeps the spread: reward functions for trl.GRPOTrainer, DivPO pairs
for trl.DPOTrainer, the grpo / dpo recipes and jobs."""
