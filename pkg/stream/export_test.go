package stream

// PauseWatch stops the group's watch of records and members, as a watch
// stalled across a server restart does, so that a test sees what a replica
// does without it (the tick restarts it after a few seconds).
func (g *Group) PauseWatch() { g.stopWatch() }
