package main

import (
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

func TestDriftSeesChangedAndRemovedFieldsOnly(t *testing.T) {
	inputs := resource.NewPropertyMapFromMap(map[string]any{
		"apiVersion": "v1", "kind": "ResourceQuota",
		"metadata": map[string]any{"name": "q", "namespace": "a", "labels": map[string]any{"x": "1"}},
		"spec":     map[string]any{"hard": map[string]any{"pods": "10", "services": "5"}},
	})
	same := resource.NewPropertyMapFromMap(map[string]any{
		"apiVersion": "v1", "kind": "ResourceQuota",
		"metadata": map[string]any{"name": "q", "namespace": "a", "uid": "u1",
			"labels": map[string]any{"x": "1", "kubernetes.io/extra": "y"}},
		"spec":   map[string]any{"hard": map[string]any{"pods": "10", "services": "5"}},
		"status": map[string]any{"used": map[string]any{"pods": "3"}},
	})
	if d := diffObject(inputs, same, inputs, "a"); d.changed {
		t.Fatalf("server additions are not drift: %v", d.detailed)
	}
	drifted := resource.NewPropertyMapFromMap(map[string]any{
		"apiVersion": "v1", "kind": "ResourceQuota",
		"metadata": map[string]any{"name": "q", "namespace": "a", "labels": map[string]any{}},
		"spec":     map[string]any{"hard": map[string]any{"pods": "1000", "services": "5"}},
	})
	d := diffObject(inputs, drifted, inputs, "a")
	if !d.changed || d.detailed["spec.hard.pods"] == nil || d.detailed["metadata.labels.x"] == nil {
		t.Fatalf("changed and removed fields must be drift: %v", d.detailed)
	}
	if d.detailed["spec.hard.services"] != nil || len(d.replaces) != 0 {
		t.Fatalf("unchanged fields are not drift and drift never replaces: %v %v", d.detailed, d.replaces)
	}
}

func TestEmptyMapsDroppedByTheServerAreNotDrift(t *testing.T) {
	inputs := resource.NewPropertyMapFromMap(map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c", "namespace": "a"},
		"data": map[string]any{},
	})
	live := resource.NewPropertyMapFromMap(map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "c", "namespace": "a", "uid": "u"},
	})
	if d := diffObject(inputs, live, inputs, "a"); d.changed {
		t.Fatalf("an empty map the server dropped is not drift: %v", d.detailed)
	}
}
