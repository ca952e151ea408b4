"""The node side: daemon, agent framework, built-in agents, policy, audit."""
