replica = 3
