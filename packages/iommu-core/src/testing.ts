// Test helpers for layers above core (the mock driver lands here with issue #4).
export {};
