package bus

// SetCountScript lets tests leave a count behind the way a crashed sub
// instance does.
var SetCountScript = setCountScript
