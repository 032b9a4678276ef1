# Forward pass against the independent numpy reference (tests/reference/).
borg_add_unit(forward_dump forward_dump.c)
