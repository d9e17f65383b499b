"""The OpenAPI documents, and the gnostic protobuf encoding kubectl downloads.

The protobuf is checked by decoding it with real protobuf message classes built from
gnostic's OpenAPIv2.proto field numbers (the subset kubectl reads).
"""

import orjson
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

from tinykube.apiserver import openapi

STRING, BOOL, INT64, DOUBLE, MSG = "string", "bool", "int64", "double", "msg"
# message -> [(field name, number, type, repeated, message type)]
GNOSTIC = {
    "Any": [("yaml", 2, STRING, False, None)],
    "NamedAny": [("name", 1, STRING, False, None), ("value", 2, MSG, False, "Any")],
    "Info": [("title", 1, STRING, False, None), ("version", 2, STRING, False, None)],
    "Document": [("swagger", 1, STRING, False, None), ("info", 2, MSG, False, "Info"),
                 ("paths", 8, MSG, False, "Paths"),
                 ("definitions", 9, MSG, False, "Definitions")],
    "Paths": [("vendor_extension", 1, MSG, True, "NamedAny"),
              ("path", 2, MSG, True, "NamedPathItem")],
    "NamedPathItem": [("name", 1, STRING, False, None), ("value", 2, MSG, False, "PathItem")],
    "PathItem": [("get", 2, MSG, False, "Operation"), ("patch", 8, MSG, False, "Operation"),
                 ("parameters", 9, MSG, True, "ParametersItem")],
    "Operation": [("operation_id", 5, STRING, False, None),
                  ("parameters", 8, MSG, True, "ParametersItem"),
                  ("responses", 9, MSG, False, "Responses"),
                  ("vendor_extension", 13, MSG, True, "NamedAny")],
    "ParametersItem": [("parameter", 1, MSG, False, "Parameter")],
    "Parameter": [("body_parameter", 1, MSG, False, "BodyParameter"),
                  ("non_body_parameter", 2, MSG, False, "NonBodyParameter")],
    "BodyParameter": [("name", 2, STRING, False, None), ("in", 3, STRING, False, None),
                      ("required", 4, BOOL, False, None), ("schema", 5, MSG, False, "Schema")],
    "NonBodyParameter": [("query_parameter_sub_schema", 3, MSG, False, "QuerySub"),
                         ("path_parameter_sub_schema", 4, MSG, False, "PathSub")],
    "QuerySub": [("required", 1, BOOL, False, None), ("in", 2, STRING, False, None),
                 ("name", 4, STRING, False, None), ("type", 6, STRING, False, None),
                 ("unique_items", 20, BOOL, False, None)],
    "PathSub": [("required", 1, BOOL, False, None), ("in", 2, STRING, False, None),
                ("name", 4, STRING, False, None), ("type", 5, STRING, False, None),
                ("unique_items", 19, BOOL, False, None)],
    "Responses": [("response_code", 1, MSG, True, "NamedResponseValue")],
    "NamedResponseValue": [("name", 1, STRING, False, None),
                           ("value", 2, MSG, False, "ResponseValue")],
    "ResponseValue": [("response", 1, MSG, False, "Response")],
    "Response": [("description", 1, STRING, False, None), ("schema", 2, MSG, False,
                                                            "SchemaItem")],
    "SchemaItem": [("schema", 1, MSG, False, "Schema")],
    "Definitions": [("additional_properties", 1, MSG, True, "NamedSchema")],
    "NamedSchema": [("name", 1, STRING, False, None), ("value", 2, MSG, False, "Schema")],
    "Properties": [("additional_properties", 1, MSG, True, "NamedSchema")],
    "TypeItem": [("value", 1, STRING, True, None)],
    "ItemsItem": [("schema", 1, MSG, True, "Schema")],
    "AdditionalPropertiesItem": [("schema", 1, MSG, False, "Schema"),
                                 ("boolean", 2, BOOL, False, None)],
    "Schema": [("_ref", 1, STRING, False, None), ("format", 2, STRING, False, None),
               ("description", 4, STRING, False, None), ("default", 5, MSG, False, "Any"),
               ("maximum", 7, DOUBLE, False, None), ("max_length", 11, INT64, False, None),
               ("required", 19, STRING, True, None), ("enum", 20, MSG, True, "Any"),
               ("additional_properties", 21, MSG, False, "AdditionalPropertiesItem"),
               ("type", 22, MSG, False, "TypeItem"), ("items", 23, MSG, False, "ItemsItem"),
               ("all_of", 24, MSG, True, "Schema"), ("properties", 25, MSG, False,
                                                     "Properties"),
               ("vendor_extension", 31, MSG, True, "NamedAny")],
}
_TYPES = {STRING: descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
          BOOL: descriptor_pb2.FieldDescriptorProto.TYPE_BOOL,
          INT64: descriptor_pb2.FieldDescriptorProto.TYPE_INT64,
          DOUBLE: descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
          MSG: descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE}


@pytest.fixture(scope="module")
def document_class():
    file_proto = descriptor_pb2.FileDescriptorProto(name="gnostic_subset.proto",
                                                    package="openapi.v2", syntax="proto3")
    for message, fields in GNOSTIC.items():
        msg = file_proto.message_type.add(name=message)
        for name, number, kind, repeated, type_name in fields:
            field = msg.field.add(name=name, number=number, type=_TYPES[kind])
            field.label = (descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED if repeated
                           else descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
            if type_name:
                field.type_name = f".openapi.v2.{type_name}"
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("openapi.v2.Document"))


def _decode(document_class, data: bytes) -> dict:
    doc = document_class()
    doc.ParseFromString(data)
    return json_format.MessageToDict(doc, preserving_proto_field_name=True)


def test_small_document_round_trips(document_class):
    source = {
        "swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": {"/api/v1/pods": {"get": {
            "operationId": "listCoreV1PodForAllNamespaces",
            "parameters": [{"name": "limit", "in": "query", "type": "string",
                            "uniqueItems": True}],
            "responses": {"200": {"description": "OK",
                                  "schema": {"$ref": "#/definitions/Pod"}}},
            "x-kubernetes-action": "list"}}},
        "definitions": {"Pod": {
            "type": "object", "required": ["spec"], "description": "A pod",
            "properties": {
                "spec": {"$ref": "#/definitions/PodSpec"},
                "count": {"type": "integer", "format": "int32", "maximum": 10},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "items": {"type": "array", "items": {"type": "string"}, "maxLength": 3},
                "policy": {"type": "string", "enum": ["Always", "Never"], "default": "Always"},
            },
            "x-kubernetes-group-version-kind": [{"group": "", "kind": "Pod", "version": "v1"}],
        }},
    }
    out = _decode(document_class, openapi.encode_v2_document(source))
    assert out["swagger"] == "2.0" and out["info"]["version"] == "v1.32.0"
    path = out["paths"]["path"][0]
    assert path["name"] == "/api/v1/pods"
    op = path["value"]["get"]
    assert op["operation_id"] == "listCoreV1PodForAllNamespaces"
    query = op["parameters"][0]["parameter"]["non_body_parameter"]["query_parameter_sub_schema"]
    assert query == {"in": "query", "name": "limit", "type": "string", "unique_items": True}
    response = op["responses"]["response_code"][0]
    assert response["name"] == "200"
    assert response["value"]["response"]["schema"]["schema"]["_ref"] == "#/definitions/Pod"
    assert op["vendor_extension"][0]["name"] == "x-kubernetes-action"
    assert orjson.loads(op["vendor_extension"][0]["value"]["yaml"]) == "list"
    pod = out["definitions"]["additional_properties"][0]
    assert pod["name"] == "Pod"
    schema = pod["value"]
    assert schema["type"] == {"value": ["object"]} and schema["required"] == ["spec"]
    props = {p["name"]: p["value"] for p in schema["properties"]["additional_properties"]}
    assert props["spec"] == {"_ref": "#/definitions/PodSpec"}
    assert props["count"]["maximum"] == 10 and props["count"]["format"] == "int32"
    assert props["labels"]["additional_properties"]["schema"]["type"]["value"] == ["string"]
    assert props["items"]["items"]["schema"][0]["type"]["value"] == ["string"]
    assert props["items"]["max_length"] == "3"
    assert [orjson.loads(e["yaml"]) for e in props["policy"]["enum"]] == ["Always", "Never"]
    assert orjson.loads(props["policy"]["default"]["yaml"]) == "Always"
    gvk = schema["vendor_extension"][0]
    assert gvk["name"] == "x-kubernetes-group-version-kind"
    assert orjson.loads(gvk["value"]["yaml"]) == [{"group": "", "kind": "Pod", "version": "v1"}]


def test_served_v2_document_decodes_with_patch_operations(document_class):
    docs = openapi.OpenAPIDocuments()
    body, digest = docs.v2_protobuf
    assert digest == openapi.content_hash(body)
    out = _decode(document_class, body)
    names = {d["name"] for d in out["definitions"]["additional_properties"]}
    assert {"io.k8s.api.apps.v1.Deployment", "io.k8s.api.core.v1.Pod"} <= names
    paths = {p["name"]: p["value"] for p in out["paths"]["path"]}
    patch = paths["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    exts = {e["name"]: orjson.loads(e["value"]["yaml"]) for e in patch["vendor_extension"]}
    assert exts["x-kubernetes-group-version-kind"] == {"group": "apps", "kind": "Deployment",
                                                       "version": "v1"}
    query_names = {p["parameter"]["non_body_parameter"]["query_parameter_sub_schema"]["name"]
                   for p in patch["parameters"]
                   if "non_body_parameter" in p["parameter"]}
    assert {"fieldValidation", "fieldManager", "dryRun", "force"} <= query_names


def test_v3_documents_have_paths_and_hash_urls():
    docs = openapi.OpenAPIDocuments()
    index = docs.v3_index()["paths"]
    assert "api/v1" in index and "apis/apps/v1" in index
    body, digest = docs.v3("apis/apps/v1")
    assert index["apis/apps/v1"]["serverRelativeURL"] == f"/openapi/v3/apis/apps/v1?hash={digest}"
    doc = orjson.loads(body)
    assert "io.k8s.api.apps.v1.Deployment" in doc["components"]["schemas"]
    patch = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"]
    assert any(p["name"] == "fieldValidation" and p["in"] == "query"
               for p in patch["parameters"])
    assert patch["x-kubernetes-group-version-kind"]["kind"] == "Deployment"
    assert docs.v3("apis/nope/v1") is None


def test_protobuf_is_chosen_only_when_listed_first():
    kubectl = f"{openapi.PROTOBUF_V2}, application/json"
    assert openapi.wants_protobuf(kubectl)
    assert openapi.wants_protobuf("application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
    assert not openapi.wants_protobuf(f"application/json, {openapi.PROTOBUF_V2}")
    assert not openapi.wants_protobuf("")
    # the answer's type must parse as a Go media type: no "@"
    assert "@" not in openapi.PROTOBUF_V2_CONTENT_TYPE
