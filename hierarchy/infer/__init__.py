"""Inference: from photos to label rows, one code path for ``eval``, ``label``, ``serve`` and the ONNX export.

- classifier.py: the ``Classifier`` protocol, the torch implementation, test-time views and precision;
- onnx.py: the export and the onnxruntime implementation; load.py: the one loader of either;
- decode.py: hierarchy decoding; abstention.py: withholding unsure labels;
- labeler.py: photos → regions → probabilities (``Labeler``); loop.py: ``hierarchy label``'s streaming loop;
- rows.py: the one schema of a label row; store.py: crash-safe chunks and the merged labels file.
"""
