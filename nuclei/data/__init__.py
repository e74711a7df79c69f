"""Everything that turns DSB2018-style folders into tensors."""
