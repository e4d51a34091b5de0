"""The audio stage: files the operator holds, probed, stored by content, linked, encoded."""
