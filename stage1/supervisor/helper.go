package supervisor

// RunHelperIfRequested must be the first call in main of every binary that
// uses the supervisor. When the process was started as the supervisor's exec
// helper it does the helper's work and never returns; otherwise it returns at
// once.
func RunHelperIfRequested() {}
