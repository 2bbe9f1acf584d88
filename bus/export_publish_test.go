package bus

// PublishLua is the publish script's text (history_meta_test.go runs it
// beside the earlier one).
var PublishLua = publishLua
